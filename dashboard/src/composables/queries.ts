// Server state through vue-query: one composable per API resource, with polling for live lists.
import { useMutation, useQuery, useQueryClient } from '@tanstack/vue-query'
import { computed, type MaybeRefOrGetter, toValue } from 'vue'
import * as api from '@/api'

export const LIVE_MS = 5000

export function useAccounts() {
  return useQuery({ queryKey: ['accounts'], queryFn: api.listAccounts, refetchInterval: LIVE_MS })
}

export function useAccount(id: MaybeRefOrGetter<number>) {
  return useQuery({
    queryKey: computed(() => ['accounts', toValue(id)]),
    queryFn: () => api.showAccount(toValue(id)),
    refetchInterval: LIVE_MS,
  })
}

export function useAccountUsage(id: MaybeRefOrGetter<number>, days: MaybeRefOrGetter<number>) {
  return useQuery({
    queryKey: computed(() => ['accounts', toValue(id), 'usage', toValue(days)]),
    queryFn: () => api.accountUsageHistory(toValue(id), toValue(days)),
    refetchInterval: 60000,
  })
}

export function useApiKeys() {
  return useQuery({ queryKey: ['api-keys'], queryFn: api.listApiKeys, refetchInterval: LIVE_MS })
}

export function useSettings() {
  return useQuery({ queryKey: ['settings'], queryFn: api.readSettings })
}

export function useSettingDefaults() {
  return useQuery({ queryKey: ['settings', 'defaults'], queryFn: api.readSettingDefaults, staleTime: Infinity })
}

/** A mutation that refreshes the given lists afterwards. */
export function useAction<A, R>(fn: (arg: A) => Promise<R>, invalidates: string[][]) {
  const client = useQueryClient()
  return useMutation({
    mutationFn: fn,
    onSettled: () => Promise.all(invalidates.map((queryKey) => client.invalidateQueries({ queryKey }))),
  })
}
