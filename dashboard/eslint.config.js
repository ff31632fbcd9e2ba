// ESLint for the dashboard: the recommended rules of ESLint, typescript-eslint and eslint-plugin-vue,
// and vuejs-accessibility's, since the dashboard must stay usable by keyboard and screen reader.
import js from '@eslint/js'
import globals from 'globals'
import { defineConfig } from 'eslint/config'
import tseslint from 'typescript-eslint'
import vue from 'eslint-plugin-vue'
import vueA11y from 'eslint-plugin-vuejs-accessibility'

export default defineConfig(
  { ignores: ['node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...vue.configs['flat/recommended'],
  ...vueA11y.configs['flat/recommended'],
  {
    files: ['**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser } },
  },
  {
    files: ['src/**', 'tests/**'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['e2e/**', 'scripts/**', '*.js', '*.ts'],
    languageOptions: { globals: globals.node },
  },
  {
    rules: {
      // Layout is left to the authors: these rules only restate formatting, and churn every template.
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/multiline-html-element-content-newline': 'off',
      'vue/html-self-closing': 'off',
      'vue/html-indent': 'off',
      'vue/html-closing-bracket-newline': 'off',
      // An unused argument kept for its position (a callback's first parameter) reads as `_name`.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // A label may wrap its control or name it with `for`: either is announced. naive-ui's inputs
      // render the native control inside, so a label around one (or pointing at its input-props id) labels it.
      'vuejs-accessibility/label-has-for': [
        'error',
        { required: { some: ['nesting', 'id'] }, controlComponents: ['NInput', 'NInputNumber', 'NSelect', 'NSwitch'] },
      ],
    },
  },
  {
    // Pages are named after their routes (src/pages/<Page>.vue) and only the router renders them, so a
    // one-word name cannot clash with an HTML element, which is what the rule guards against.
    files: ['src/pages/**/*.vue'],
    rules: { 'vue/multi-word-component-names': 'off' },
  },
  {
    // A component test defines the small host components it mounts next to the test that uses them.
    files: ['tests/**'],
    rules: { 'vue/one-component-per-file': 'off' },
  },
)
