// One shared clock (epoch seconds) for every countdown on the page, ticking once a second.
import { useNow } from '@vueuse/core'
import { computed } from 'vue'

let shared: ReturnType<typeof make> | null = null
function make() {
  const now = useNow({ interval: 1000 })
  return computed(() => now.value.getTime() / 1000)
}
export function useEpochNow() {
  shared ??= make()
  return shared
}
