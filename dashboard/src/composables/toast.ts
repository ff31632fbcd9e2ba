// Toasts that carry the server's own message.
import { useMessage } from 'naive-ui'
import { messageOf } from '@/api'

export function useToast() {
  const message = useMessage()
  return {
    ok: (text: string) => message.success(text),
    info: (text: string) => message.info(text),
    fail: (error: unknown, prefix?: string) =>
      message.error(prefix ? `${prefix}: ${messageOf(error)}` : messageOf(error), { duration: 8000, closable: true }),
  }
}
