// UI preferences kept in the browser: the theme (system, light or dark).
import { defineStore } from 'pinia'
import { computed } from 'vue'
import { usePreferredDark, useStorage } from '@vueuse/core'

export type ThemeChoice = 'system' | 'light' | 'dark'

export const usePrefs = defineStore('prefs', () => {
  const theme = useStorage<ThemeChoice>('codex-lb.theme', 'system')
  const systemDark = usePreferredDark()
  const dark = computed(() => (theme.value === 'system' ? systemDark.value : theme.value === 'dark'))
  /** system → the other look → the same look as the system, forced → back to following the system. */
  function cycleTheme() {
    const other: ThemeChoice = systemDark.value ? 'light' : 'dark'
    const same: ThemeChoice = systemDark.value ? 'dark' : 'light'
    theme.value = theme.value === 'system' ? other : theme.value === other ? same : 'system'
  }
  return { theme, dark, cycleTheme }
})
