// Server state of the history pages (request logs, usage, sessions) through vue-query.
import { keepPreviousData, useInfiniteQuery, useQuery } from '@tanstack/vue-query'
import { computed, type MaybeRefOrGetter, toValue } from 'vue'
import * as api from '@/api'

export const USAGE_REFRESH_MS = 15000
const HOUR = 3600
const DAY = 86400

/** Usage over the last `seconds`, bucketed by hour up to 3 days, by day beyond. */
export function useUsageSince(seconds: MaybeRefOrGetter<number>, split?: string) {
  return useQuery({
    queryKey: computed(() => ['usage', 'last', toValue(seconds), split ?? '']),
    queryFn: () => {
      const span = toValue(seconds)
      const now = Date.now() / 1000
      return api.readUsage({ since: now - span, until: now, bucket: span > 3 * DAY ? 'day' : 'hour', split })
    },
    refetchInterval: USAGE_REFRESH_MS,
    placeholderData: keepPreviousData,
  })
}

export function useUsageRange(range: MaybeRefOrGetter<[number, number]>, split: MaybeRefOrGetter<string>) {
  return useQuery({
    queryKey: computed(() => ['usage', 'range', ...toValue(range), toValue(split)]),
    queryFn: () => {
      const [since, until] = toValue(range)
      return api.readUsage({ since, until, bucket: until - since > 3 * DAY ? 'day' : 'hour', split: toValue(split) })
    },
    refetchInterval: USAGE_REFRESH_MS,
    placeholderData: keepPreviousData,
  })
}

export function useRequestLogs(filter: MaybeRefOrGetter<api.LogFilter>) {
  return useInfiniteQuery({
    queryKey: computed(() => ['request-logs', toValue(filter)]),
    queryFn: ({ pageParam }) => api.listRequestLogs(toValue(filter), pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    refetchInterval: 10000,
  })
}

export function useRecentFailures(limit = 8) {
  return useQuery({
    queryKey: ['request-logs', 'failures', limit],
    queryFn: () => api.listRequestLogs({ status: 'error', since: Date.now() / 1000 - 7 * DAY }, null, limit),
    refetchInterval: 5000,
  })
}

export function useRequestLog(id: MaybeRefOrGetter<number | null>) {
  return useQuery({
    queryKey: computed(() => ['request-log', toValue(id)]),
    queryFn: () => api.showRequestLog(toValue(id)!),
    enabled: computed(() => toValue(id) !== null),
  })
}

export function useConversations(seconds: MaybeRefOrGetter<number>) {
  return useQuery({
    queryKey: computed(() => ['sessions', toValue(seconds)]),
    queryFn: () => api.listConversations(Date.now() / 1000 - toValue(seconds)),
    refetchInterval: USAGE_REFRESH_MS,
    placeholderData: keepPreviousData,
  })
}

export function useConversation(session: MaybeRefOrGetter<string | null>) {
  return useQuery({
    queryKey: computed(() => ['session', toValue(session)]),
    queryFn: () => api.showConversation(toValue(session)!),
    enabled: computed(() => !!toValue(session)),
  })
}

export const RANGES = [
  { label: 'Last hour', value: HOUR },
  { label: 'Last 24 h', value: DAY },
  { label: 'Last 7 days', value: 7 * DAY },
  { label: 'Last 30 days', value: 30 * DAY },
]
