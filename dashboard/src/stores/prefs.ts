// UI preferences kept in the browser: the theme (system, light or dark).
import { defineStore } from 'pinia'
import { computed } from 'vue'
import { usePreferredDark, useStorage } from '@vueuse/core'

export type ThemeChoice = 'system' | 'light' | 'dark'

export const usePrefs = defineStore('prefs', () => {
  const theme = useStorage<ThemeChoice>('codex-lb.theme', 'system')
  const systemDark = usePreferredDark()
  const dark = computed(() => (theme.value === 'system' ? systemDark.value : theme.value === 'dark'))
  function cycleTheme() {
    theme.value = theme.value === 'system' ? (systemDark.value ? 'light' : 'dark') : theme.value === 'dark' ? 'light' : 'dark'
  }
  return { theme, dark, cycleTheme }
})
