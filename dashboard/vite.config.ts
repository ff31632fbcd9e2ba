/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import { fileURLToPath } from 'node:url'

// The build lands in server/static/, which the Python package ships and server/edge/static_site.py serves.
export default defineConfig({
  plugins: [vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: {
    outDir: fileURLToPath(new URL('../server/static', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 900,
    // No inline scripts or data: URLs for scripts: the server's CSP allows script-src 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    rolldownOptions: {
      output: {
        manualChunks(id: string) {
          if (id.includes('node_modules/echarts') || id.includes('node_modules/zrender') || id.includes('vue-echarts')) return 'charts'
          if (id.includes('node_modules/naive-ui') || id.includes('node_modules/css-render') || id.includes('node_modules/date-fns') || id.includes('node_modules/lodash')) return 'ui'
          if (id.includes('node_modules')) return 'vendor'
        },
      },
    },
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:2455', '/v1': 'http://127.0.0.1:2455', '/health': 'http://127.0.0.1:2455' },
  },
  test: {
    environment: 'jsdom',
    include: ['tests/**/*.test.ts'],
  },
})
