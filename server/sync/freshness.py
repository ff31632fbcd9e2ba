"""Read-your-writes on one host: when the dashboard API answers a change, every worker acts on it.

Owns the host's worker table (one row per worker process in shared memory: its pid and the roster
generation it has loaded) and the two waits built on it: a changing /api/* request is answered only
once every live worker of the host has loaded the generation its change bumped (bounded by
HOST_WAIT_S), and an API key a worker does not know is looked up in the database before the proxy
routes refuse it. Other replicas follow within their database poll (server.sync.reloader).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from multiprocessing.sharedctypes import SynchronizedArray

from sanic import Request, Sanic

from server.keys.secret import KEY_PREFIX

log = logging.getLogger(__name__)
MAX_WORKERS = 256
HOST_WAIT_S = 5.0
_POLL_S = 0.01
_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PID, _GENERATION = 0, 1


class HostWorkers:
    """One worker's handle on the table of the host's workers and what each has loaded."""

    def __init__(self, table: SynchronizedArray) -> None:
        self._table = table
        self._row = -1

    @staticmethod
    def create_table(context=None) -> SynchronizedArray:
        ctx = context or multiprocessing.get_context("spawn")
        return ctx.Array("q", MAX_WORKERS * 2)

    def register(self, generation: int) -> None:
        """Take a free row (or one a dead worker left behind) for this process."""
        pid = os.getpid()
        with self._table.get_lock():
            for row in range(MAX_WORKERS):
                holder = self._table[row * 2 + _PID]
                if holder == 0 or holder == pid or not _alive(holder):
                    self._table[row * 2 + _PID] = pid
                    self._table[row * 2 + _GENERATION] = generation
                    self._row = row
                    return
        log.warning("worker table full: the API will not wait for this worker pid=%d", pid)

    def report(self, generation: int) -> None:
        if self._row >= 0:
            self._table[self._row * 2 + _GENERATION] = generation

    def behind(self, generation: int) -> list[int]:
        """Pids of live workers that have not loaded `generation` yet."""
        values = self._table.get_obj()[:]
        return [
            values[row * 2 + _PID]
            for row in range(MAX_WORKERS)
            if values[row * 2 + _PID]
            and values[row * 2 + _GENERATION] < generation
            and _alive(values[row * 2 + _PID])
        ]

    async def wait_loaded(self, generation: int, timeout: float = HOST_WAIT_S) -> bool:
        deadline = time.monotonic() + timeout
        while self.behind(generation):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(_POLL_S)
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def install(app: Sanic) -> None:
    """Listeners that make and join the worker table, and the two middlewares. Call after the
    listener that opens app.ctx.proxy is installed."""

    @app.main_process_start
    async def create_worker_table(app: Sanic) -> None:
        app.shared_ctx.host_workers = HostWorkers.create_table()

    @app.before_server_start
    async def join_worker_table(app: Sanic) -> None:
        # Without a main process (tests serving in process) the table is this process's own.
        table = getattr(app.shared_ctx, "host_workers", None) or HostWorkers.create_table()
        workers = HostWorkers(table)
        watcher = app.ctx.proxy.watcher
        workers.register(watcher.loaded_generation)
        watcher.on_loaded = workers.report
        app.ctx.host_workers = workers

    app.on_request(learn_presented_key)

    @app.on_response
    async def answer_once_the_host_has_loaded_it(request: Request, response) -> None:
        if (
            request.method in _CHANGING
            and request.path.startswith("/api/")
            and response is not None
            and response.status < 400
        ):
            generation = request.app.ctx.proxy.slots.generation
            if not await request.app.ctx.host_workers.wait_loaded(generation):
                log.warning(
                    "the host's workers did not load generation=%d within %.0fs path=%s",
                    generation,
                    HOST_WAIT_S,
                    request.path,
                )


async def learn_presented_key(request: Request) -> None:
    """Before a key this worker does not know is judged, ask the database once (it may be a moment old).
    Runs as a middleware, and from the pre-body admission (server.edge.intake), which judges a caller
    sooner."""
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token.startswith(KEY_PREFIX):
        keys = request.app.ctx.proxy.keys
        if keys.lookup(token) is None:
            await keys.learn(token)
