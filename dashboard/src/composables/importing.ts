import { useQueryClient } from '@tanstack/vue-query'
import { ref } from 'vue'
import { importAccounts } from '@/api'
import { useToast } from './toast'

/** Upload auth.json files; toasts name what was added and quote the server's reason for each refusal. */
export function useImport(done?: () => void) {
  const busy = ref(false)
  const toast = useToast()
  const client = useQueryClient()
  async function run(files: File[]) {
    busy.value = true
    try {
      const answer = await importAccounts(files)
      for (const item of answer.imported) toast.ok(`${item.created ? 'Added' : 'Updated'} ${item.email || item.chatgpt_account_id}`)
      for (const item of answer.errors) toast.fail(new Error(`${item.source}: ${item.error}`))
      if (answer.imported.length) done?.()
    } catch (error) {
      toast.fail(error, 'Import failed')
    } finally {
      busy.value = false
      await client.invalidateQueries({ queryKey: ['accounts'] })
    }
  }
  return { busy, run }
}
