// Who is signed in: the answer of GET /api/auth/status, refreshed after sign-in and sign-out.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { ApiError, authStatus, type AuthStatus } from '@/api'

/** A server without the sign-in API (older build) admits local requests only: act as a local admin. */
const LOCAL_ONLY: AuthStatus = {
  mode: 'disabled',
  authenticated: true,
  role: 'admin',
  user: null,
  password_set: false,
  totp_enabled: false,
  bootstrap_required: false,
  local_without_password: true,
  proxy_required: false,
}

export const useSession = defineStore('session', () => {
  const status = ref<AuthStatus | null>(null)
  const authApi = ref(true)
  const error = ref<string | null>(null)

  async function load(): Promise<AuthStatus> {
    try {
      status.value = await authStatus()
      authApi.value = true
      error.value = null
    } catch (caught) {
      if (caught instanceof ApiError && (caught.status === 404 || caught.status === 405)) {
        status.value = LOCAL_ONLY
        authApi.value = false
        error.value = null
      } else {
        error.value = caught instanceof Error ? caught.message : String(caught)
        throw caught
      }
    }
    return status.value
  }

  const signedIn = computed(() => !!status.value?.authenticated)
  const readOnly = computed(() => status.value?.role === 'viewer')
  /** Whether a sign-out makes sense (a password session, not local or trusted-header access). */
  const canSignOut = computed(
    () => authApi.value && !!status.value?.authenticated && status.value.mode !== 'disabled' && !status.value.local_without_password,
  )
  function signedOut() {
    if (status.value) status.value = { ...status.value, authenticated: false, role: null }
  }
  return { status, authApi, error, load, signedIn, readOnly, canSignOut, signedOut }
})
