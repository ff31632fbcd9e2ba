import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { useSession } from './stores/session'
import { setSignInRequiredHandler } from './api'

const routes: RouteRecordRaw[] = [
  { path: '/sign-in', name: 'sign-in', component: () => import('./pages/SignIn.vue'), meta: { public: true, bare: true } },
  { path: '/', redirect: '/overview' },
  { path: '/overview', name: 'overview', component: () => import('./pages/Overview.vue'), meta: { title: 'Overview' } },
  { path: '/forecast', name: 'forecast', component: () => import('./pages/Forecast.vue'), meta: { title: 'Where the pool is heading' } },
  { path: '/request-logs', name: 'request-logs', component: () => import('./pages/RequestLogs.vue'), meta: { title: 'Request logs' } },
  { path: '/usage', name: 'usage', component: () => import('./pages/Usage.vue'), meta: { title: 'Usage and cost' } },
  { path: '/sessions', name: 'sessions', component: () => import('./pages/Sessions.vue'), meta: { title: 'Sessions' } },
  { path: '/accounts', name: 'accounts', component: () => import('./pages/Accounts.vue'), meta: { title: 'Accounts' } },
  {
    path: '/accounts/:id(\\d+)',
    name: 'account',
    component: () => import('./pages/AccountDetail.vue'),
    props: (route) => ({ id: Number(route.params.id) }),
    meta: { title: 'Account' },
  },
  { path: '/api-keys', name: 'api-keys', component: () => import('./pages/ApiKeys.vue'), meta: { title: 'API keys' } },
  { path: '/proxies', name: 'proxies', component: () => import('./pages/Proxies.vue'), meta: { title: 'Egress proxies' } },
  { path: '/settings', name: 'settings', component: () => import('./pages/Settings.vue'), meta: { title: 'Settings' } },
  { path: '/:rest(.*)*', name: 'not-found', component: () => import('./pages/NotFound.vue'), meta: { title: 'Not found' } },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach(async (to) => {
  const session = useSession()
  if (!session.status) {
    try {
      await session.load()
    } catch {
      // The sign-in page shows the error with a retry.
      return to.name === 'sign-in' ? true : { name: 'sign-in', query: { next: to.fullPath } }
    }
  }
  if (to.meta.public) return true
  if (!session.signedIn) return { name: 'sign-in', query: to.fullPath !== '/' ? { next: to.fullPath } : {} }
  return true
})

router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title} · codex-lb` : 'codex-lb'
})

setSignInRequiredHandler(() => {
  const session = useSession()
  session.signedOut()
  const here = router.currentRoute.value
  if (here.name !== 'sign-in') void router.push({ name: 'sign-in', query: { next: here.fullPath } })
})
