"""Wires dashboard sign-in into the app: the per-worker DashboardAuth, cross-site checks, security
headers, the audit of /api changes, the start-up warnings and the bootstrap token."""

from __future__ import annotations

import logging
import time

from sanic import Sanic

from server.auth import audit, crosssite, headers, store, throttle
from server.auth.service import DashboardAuth
from server.jobs import PeriodicJob

log = logging.getLogger(__name__)
PRUNE_INTERVAL_S = 3600.0


def install(app: Sanic) -> None:
    app.register_middleware(crosssite.check_request, "request", priority=100)
    app.register_middleware(headers.add_security_headers, "response")
    app.register_middleware(audit.record_api_change, "response")

    @app.before_server_start
    async def open_dashboard_auth(app: Sanic) -> None:
        settings, proxy = app.ctx.settings, app.ctx.proxy
        auth = DashboardAuth(settings, app.ctx.db, app.ctx.secretbox, proxy.slots.bump_generation)
        await auth.reload()
        proxy.watcher.add(auth.reload)
        app.ctx.dashboard_auth = auth
        _warn_about_mode(settings)
        await auth.ensure_bootstrap_token()

        async def prune() -> None:
            await app.ctx.db.run(store.prune, settings.dashboard_session_idle_s)
            await app.ctx.db.run(throttle.prune, time.time())

        proxy.jobs.start([PeriodicJob("dashboard-sessions-prune", PRUNE_INTERVAL_S, prune)])


def _warn_about_mode(settings) -> None:
    if settings.dashboard_auth_mode == "disabled":
        log.warning(
            "dashboard sign-in is DISABLED (CODEX_LB_DASHBOARD_AUTH_MODE=disabled): anyone who can reach "
            "this server can manage its accounts and keys; use it only on a network closed by other means"
        )
    elif settings.dashboard_auth_mode == "trusted_header" and not (
        settings.firewall_trust_proxy_headers and settings.firewall_trusted_proxy_cidrs
    ):
        log.error(
            "dashboard: CODEX_LB_DASHBOARD_AUTH_MODE=trusted_header but no proxy is trusted (set "
            "CODEX_LB_FIREWALL_TRUSTED_PROXY_CIDRS and CODEX_LB_FIREWALL_TRUST_PROXY_HEADERS=true): the "
            "%s header is ignored and only the fallback password signs in",
            settings.dashboard_auth_proxy_header,
        )
