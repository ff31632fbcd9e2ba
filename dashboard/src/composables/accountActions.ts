// The account actions shared by the list and the detail page, each with a toast of the outcome.
import { useQueryClient } from '@tanstack/vue-query'
import { ref } from 'vue'
import * as api from '@/api'
import type { Account } from '@/api'
import { useToast } from './toast'

export function accountName(a: Pick<Account, 'label' | 'email' | 'chatgpt_account_id'>): string {
  return a.label || a.email || a.chatgpt_account_id
}

export function useAccountActions() {
  const toast = useToast()
  const client = useQueryClient()
  const busy = ref<string | null>(null)
  async function run(key: string, work: () => Promise<unknown>, done: string) {
    busy.value = key
    try {
      await work()
      toast.ok(done)
      return true
    } catch (error) {
      toast.fail(error)
      return false
    } finally {
      busy.value = null
      await client.invalidateQueries({ queryKey: ['accounts'] })
    }
  }
  return {
    busy,
    pause: (a: Account) => run(`pause-${a.id}`, () => api.pauseAccount(a.id), `Paused ${accountName(a)}`),
    resume: (a: Account) => run(`resume-${a.id}`, () => api.resumeAccount(a.id), `Resumed ${accountName(a)}`),
    refresh: (a: Account) => run(`refresh-${a.id}`, () => api.refreshAccount(a.id), `Refreshed the tokens of ${accountName(a)}`),
    rename: (a: Account, label: string) => run(`rename-${a.id}`, () => api.renameAccount(a.id, label), 'Renamed'),
    setPolicy: (a: Account, policy: Account['routing_policy'], reserve: number) =>
      run(`policy-${a.id}`, () => api.setAccountPolicy(a.id, policy, reserve), `Routing policy of ${accountName(a)} saved`),
    remove: (a: Account) => run(`delete-${a.id}`, () => api.deleteAccount(a.id), `Deleted ${accountName(a)}`),
    exportJson(a: Account) {
      const link = document.createElement('a')
      link.href = api.exportAccountUrl(a.id)
      link.download = `auth-${a.id}.json`
      document.body.appendChild(link)
      link.click()
      link.remove()
      toast.info('Exported auth.json (recorded in the account history)')
    },
  }
}

type Win = { used_percent: number; window_minutes: number | null; reset_at: number | null } | null | undefined

export interface WindowView {
  used: number | null
  resetAt: number | null
  minutes: number | null
  known: boolean
}

/** The two windows of an account: this host's live values when it has them, the last poll otherwise. */
export function windowsOf(a: Account): { primary: WindowView; secondary: WindowView } {
  const pick = (liveUsed: number | undefined, liveReset: number | null | undefined, w: Win): WindowView => {
    const hasLive = !!liveReset || (liveUsed ?? 0) > 0
    return {
      used: hasLive ? (liveUsed ?? 0) : (w?.used_percent ?? null),
      resetAt: (liveReset || w?.reset_at) ?? null,
      minutes: w?.window_minutes ?? null,
      known: hasLive || !!w,
    }
  }
  const live = a.live
  return {
    primary: pick(live?.primary_used_percent, live?.primary_reset_at, a.usage?.primary),
    secondary: pick(live?.secondary_used_percent, live?.secondary_reset_at, a.usage?.secondary),
  }
}
