// One fetch wrapper for the dashboard API: same-origin cookies, JSON in and out, the server's own error
// message on failure, and every answer checked against its zod schema so a changed shape fails loudly.
import type { z } from 'zod'

export class ApiError extends Error {
  constructor(
    message: string,
    public status: number,
    public code: string | null = null,
    public param: string | null = null,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

/** Called on a 401 "sign_in_required" so the app can go to the sign-in page. */
let onSignInRequired: (() => void) | null = null
export function setSignInRequiredHandler(handler: (() => void) | null) {
  onSignInRequired = handler
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export interface RequestOptions {
  body?: unknown
  form?: FormData
  query?: Record<string, string | number | undefined | null>
}

export async function request<T extends z.ZodType>(
  method: Method,
  path: string,
  schema: T | null,
  options: RequestOptions = {},
): Promise<z.infer<T>> {
  let url = path
  if (options.query) {
    const params = new URLSearchParams()
    for (const [name, value] of Object.entries(options.query)) {
      if (value !== undefined && value !== null && value !== '') params.set(name, String(value))
    }
    const text = params.toString()
    if (text) url += `?${text}`
  }
  const init: RequestInit = { method, credentials: 'same-origin', headers: { accept: 'application/json' } }
  if (options.form) {
    init.body = options.form
  } else if (options.body !== undefined) {
    init.body = JSON.stringify(options.body)
    ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  let response: Response
  try {
    response = await fetch(url, init)
  } catch {
    throw new ApiError('The server did not answer. Is codex-lb running?', 0, 'network_error')
  }
  const text = await response.text()
  let payload: unknown = null
  if (text) {
    try {
      payload = JSON.parse(text)
    } catch {
      payload = null
    }
  }
  if (!response.ok && response.status !== 207) {
    const error = errorOf(payload)
    const apiError = new ApiError(
      error?.message ?? `The server answered ${response.status} ${response.statusText}`.trim(),
      response.status,
      error?.code ?? null,
      error?.param ?? null,
    )
    if (response.status === 401 && apiError.code === 'sign_in_required') onSignInRequired?.()
    throw apiError
  }
  if (schema === null) return undefined as z.infer<T>
  const parsed = schema.safeParse(payload)
  if (!parsed.success) {
    const where = parsed.error.issues[0]
    throw new ApiError(
      `Unexpected answer from ${method} ${path}: ${where?.path.join('.') || 'body'} ${where?.message ?? ''}`.trim(),
      response.status,
      'unexpected_answer',
    )
  }
  return parsed.data
}

function errorOf(payload: unknown): { message?: string; code?: string; param?: string } | null {
  if (payload && typeof payload === 'object' && 'error' in payload) {
    const error = (payload as { error: unknown }).error
    if (error && typeof error === 'object') return error as { message?: string; code?: string; param?: string }
    if (typeof error === 'string') return { message: error }
  }
  return null
}

/** The message a person should read for any thrown value. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message
  return String(error)
}
