"""The OAuth callback listener on port 1455 (the only redirect URI the Codex client allows).

Only one process of a host can bind the port, so the bind itself is the lock: a worker that starts a
browser sign-in tries to listen, and keeps trying while its sign-in is pending (another worker may be
closing its listener); a listening worker closes it once no browser sign-in is pending anywhere.
"""

from __future__ import annotations

import asyncio
import errno
import html
import logging
import time

from aiohttp import web

from server.accounts import flows
from server.accounts.login import LoginError, LoginService
from server.db import Database

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>codex-lb</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem}}</style>
</head><body><h1>{title}</h1><p>{detail}</p></body></html>"""


class CallbackListener:
    def __init__(self, db: Database, logins: LoginService, host: str, port: int) -> None:
        self._db = db
        self._logins = logins
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task | None = None

    @property
    def listening(self) -> bool:
        return self._runner is not None

    def flow_started(self) -> None:
        """A browser sign-in started in this worker: make sure someone on this host listens.

        The watch keeps trying to bind while any sign-in is pending, so a listener that another worker
        is just closing is taken over within a second."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="oauth-callback-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._close()

    async def _watch(self) -> None:
        while True:
            try:
                pending = await self._db.run(flows.pending_count, "browser", time.time())
            except Exception:  # noqa: BLE001 - a database hiccup: look again shortly
                log.exception("callback listener could not read pending sign-ins")
                pending = 1
            if pending and not self.listening:
                await self._open()
            elif not pending:
                await self._close()
                return
            await asyncio.sleep(CHECK_INTERVAL_S)

    async def _open(self) -> None:
        app = web.Application()
        app.router.add_get("/auth/callback", self._callback)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, reuse_port=False)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                return  # another worker of this host listens; it finishes the sign-in from the database
            log.warning(
                "cannot listen for sign-in callbacks host=%s port=%d error=%s", self._host, self._port, exc
            )
            return
        self._runner = runner
        log.info("listening for sign-in callbacks host=%s port=%d", self._host, self._port)

    async def _close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            log.info("sign-in callback listener closed port=%d", self._port)

    async def _callback(self, request: web.Request) -> web.Response:
        try:
            done = await self._logins.complete_callback(dict(request.query))
        except LoginError as exc:
            return _page("Sign-in did not complete", str(exc), 400)
        who = done.email or "your ChatGPT account"
        return _page("Signed in", f"{who} is now in the codex-lb pool. You can close this tab.", 200)


def _page(title: str, detail: str, status: int) -> web.Response:
    body = _PAGE.format(title=html.escape(title), detail=html.escape(detail))
    return web.Response(text=body, content_type="text/html", status=status)
