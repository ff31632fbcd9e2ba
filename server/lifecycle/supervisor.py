"""The main process's worker supervisor: a stop that always completes, and dead workers replaced.

Sanic 25.12's WorkerManager (which `sanic server.app --workers N` runs in the main process) loses
shutdowns in ways we reproduced against this app:
- a SIGTERM before every worker has acknowledged start-up re-queues its stop message forever in
  `wait_for_ack` while the workers exit, so the main process never leaves (sanic#2997; 5 of 12 runs
  when signalled right after the first worker answered, 4 of 8 during start-up);
- its signal handler talks to the multiprocessing Manager (`worker_state`) from inside whatever the
  main thread was doing, often another call on the same Manager connection, so replies can be crossed;
- `join()` skips workers it marked TERMINATED, so the main process waits at most 10 s, then exits and
  multiprocessing's atexit SIGTERMs the still-draining workers: long streams were cut at ~10.5 s;
- a worker that dies is never replaced, and `kill()` signals the worker's process group, which is the
  main process's own.
`Supervisor` replaces those parts: the signal handler only sets a flag, signals the workers and closes
the main process's copy of the listening socket (no IPC); waits are bounded; the main process waits
for draining workers up to the drain deadline, then kills them; dead workers are restarted with a log
line after `reclaim` gave back what they held, unless they keep dying.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable

import sanic.mixins.startup
from sanic import Sanic
from sanic.exceptions import ServerKilled
from sanic.worker.manager import MonitorCycle, WorkerManager
from sanic.worker.process import ProcessState, WorkerProcess

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 60.0  # a worker that has not come up by then (migrations included) stops the server
EXIT_GRACE_S = 10.0  # after the drain deadline: time to settle, flush logs and exit before SIGKILL
STARTING_GRACE_S = 5.0  # a worker stopped while starting exits at once; killed if it has not by then
RESTARTS_ALLOWED = 5  # dead workers replaced within RESTART_WINDOW_S before the server gives up
RESTART_WINDOW_S = 60.0
POLL_S = 0.1


class MainProcessHooks:
    """What the app gives the supervisor, set in `main_process_start` (the supervisor is made later)."""

    def __init__(self) -> None:
        self.drain_s = 30.0
        self.stop_flag = None  # multiprocessing Value: workers poll it, so a lost signal cannot hang a stop
        self.on_worker_death: list[Callable[[int, int], None]] = []


hooks = MainProcessHooks()


def install(app: Sanic, drain_s: float) -> None:
    """Make Sanic's main process run `Supervisor` (Sanic has no setting for the manager class)."""
    hooks.drain_s = drain_s
    sanic.mixins.startup.WorkerManager = Supervisor

    @app.main_process_start
    async def prepare_supervision(app: Sanic) -> None:
        signal.signal(signal.SIGTERM, _stop_before_workers)
        hooks.stop_flag = multiprocessing.get_context("spawn").Value("b", 0)
        app.shared_ctx.stop_requested = hooks.stop_flag


def _stop_before_workers(signum, frame) -> None:
    """Until the supervisor exists, a stop signal unwinds start-up through Sanic's own clean-up."""
    raise SystemExit(0)


def worker_index(name: str) -> int | None:
    """`Sanic-Server-3-0` -> 3: stable across restarts of the same worker."""
    prefix = f"{WorkerProcess.SERVER_LABEL}-"
    parts = name.split("-")
    if len(parts) >= 3 and f"{parts[1]}-" == prefix and parts[2].isdigit():
        return int(parts[2])
    return None


class Supervisor(WorkerManager):
    def __init__(self, *args, **kwargs) -> None:
        self._stop_at: float | None = None
        self._failed = False
        self._signalled: set[int] = set()
        self._deaths: deque[float] = deque()
        self._held_messages: list = []
        super().__init__(*args, **kwargs)  # installs shutdown_signal below for SIGINT and SIGTERM

    # --- stopping -------------------------------------------------------------------------------

    def shutdown_signal(self, signum, frame) -> None:
        # Runs between two bytecodes of whatever the main thread was doing, possibly halfway through a
        # call on the Manager connection: only flags, os.kill and closing our own socket here.
        if self._stop_at is not None:
            log.warning("second signal %s: killing the workers now", signal.Signals(signum).name)
            self._kill_workers()
            return
        log.info("signal %s: stopping (drain up to %.0fs)", signal.Signals(signum).name, hooks.drain_s)
        self._begin_stop()

    def shutdown(self) -> None:
        """Sanic's entry for a stop asked by a worker (`app.stop()`): the same stop as a signal."""
        if self._stop_at is None:
            self._begin_stop()

    def _begin_stop(self) -> None:
        self._stop_at = time.monotonic()
        self._shutting_down = True
        if hooks.stop_flag is not None:
            hooks.stop_flag.value = 1
        # Closing the main process's copy of the listening socket means that once each worker has
        # closed its own (first thing in its stop), new connections are refused instead of queueing.
        sock = self._server_settings.get("sock")
        if sock is not None:
            sock.close()
        self._signal_workers()

    def _signal_workers(self) -> None:
        # Every managed process: the servers, and Sanic's reloader or inspector when they run.
        for process in list(self.processes):
            pid = process.pid
            if pid and pid not in self._signalled and process.is_alive():
                self._signalled.add(pid)
                try:
                    os.kill(pid, signal.SIGINT)  # what Sanic's workers take as "stop gracefully"
                except ProcessLookupError:
                    pass

    def _kill_workers(self) -> None:
        for process in list(self.processes):
            if process.pid and process.is_alive():
                try:
                    os.kill(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def kill(self) -> None:
        """Sanic's hard stop; its version signals the workers' process group, which includes us."""
        self._kill_workers()
        raise ServerKilled

    # --- the run ---------------------------------------------------------------------------------

    def run(self) -> None:
        self.start()
        self.monitor()
        self.join()
        self.cleanup()
        if self._failed:
            raise ServerKilled  # Sanic exits with status 1

    def start(self) -> None:
        for worker in self.workers:
            for process in worker.processes:
                if self._stop_at is not None:
                    return
                if not worker.auto_start:
                    process.set_state(ProcessState.NONE, True)
                    continue
                process.start()

    def wait_for_ack(self) -> None:
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while self._stop_at is None:
            if self._all_workers_ack():
                return
            if self.monitor_subscriber.poll(POLL_S):
                message = self.monitor_subscriber.recv()
                if message == "__TERMINATE_EARLY__" and self._stop_at is None:
                    log.error("a worker failed during start-up; stopping (see its error above)")
                    self._fail()
                    return
                if not message or message == "__TERMINATE__":
                    self.shutdown()
                    return
                self._held_messages.append(message)  # handled once every worker is up
            for process in self._server_processes():
                if self._stop_at is None and process.pid and not process.is_alive():
                    log.error(
                        "worker %s exited during start-up (exit code %s); stopping",
                        process.name,
                        process.exitcode,
                    )
                    self._fail()
                    return
            if self._stop_at is None and time.monotonic() > deadline:
                log.error("workers did not come up within %.0fs; stopping", ACK_TIMEOUT_S)
                self._fail()
                return

    def monitor(self) -> None:
        self.wait_for_ack()
        for message in self._held_messages:
            self.monitor_publisher.send(message)
        self._held_messages.clear()
        while self._stop_at is None:
            cycle = self._poll_monitor()
            if cycle is MonitorCycle.BREAK:
                self.shutdown()
                break
            if cycle is MonitorCycle.CONTINUE:
                continue
            self._sync_states()
            self._cleanup_non_tracked_workers()
            self._replace_dead_workers()

    def _handle_message(self, message: str) -> MonitorCycle | None:
        if message == "__TERMINATE_EARLY__":
            # A replacement worker failed while starting: _replace_dead_workers sees it exit and
            # counts it (Sanic would read the message as a process name to restart).
            return MonitorCycle.CONTINUE
        return super()._handle_message(message)

    def join(self) -> None:
        """Wait for the workers to drain and exit; past the deadline, kill them."""
        stopped_at = self._stop_at or time.monotonic()
        deadline = stopped_at + hooks.drain_s + EXIT_GRACE_S
        # A worker still starting has nothing to drain: it gets seconds, not the drain deadline.
        starting = [process for process in self._server_processes() if not self._acked(process)]
        while time.monotonic() < deadline:
            self._signal_workers()  # also reaches a worker started while the stop began
            if not any(process.is_alive() for process in self.processes):
                break
            if starting and time.monotonic() > stopped_at + STARTING_GRACE_S:
                for process in starting:
                    if process.is_alive():
                        log.warning(
                            "worker %s still starting %.0fs after the stop: killing it",
                            process.name,
                            STARTING_GRACE_S,
                        )
                        os.kill(process.pid, signal.SIGKILL)
                starting = []
            time.sleep(POLL_S)
        else:
            alive = [process.name for process in self.processes if process.is_alive()]
            waited = time.monotonic() - (self._stop_at or 0.0)
            log.error("workers still running %.0fs after the stop: killing %s", waited, alive)
            self._kill_workers()
            end = time.monotonic() + 5.0
            while any(process.is_alive() for process in self.processes) and time.monotonic() < end:
                time.sleep(POLL_S)

    def _acked(self, process: WorkerProcess) -> bool:
        try:
            return self.worker_state.get(process.name, {}).get("state") in ("ACKED", "JOINED")
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return True  # cannot tell: give it the whole drain

    def terminate(self) -> None:
        self.shutdown()

    def _fail(self) -> None:
        self._failed = True
        self.shutdown()

    # --- dead workers ---------------------------------------------------------------------------

    def _server_processes(self) -> list[WorkerProcess]:
        return [
            process
            for worker in list(self.transient.values())
            if worker.name.startswith(WorkerProcess.SERVER_LABEL)
            for process in worker.processes
        ]

    def _replace_dead_workers(self) -> None:
        for process in self._server_processes():
            if self._stop_at is not None:
                return
            if not process.pid or process.is_alive() or process.state is ProcessState.RESTARTING:
                continue
            pid, code = process.pid, process.exitcode
            now = time.monotonic()
            self._deaths.append(now)
            while self._deaths and now - self._deaths[0] > RESTART_WINDOW_S:
                self._deaths.popleft()
            giving_up = len(self._deaths) > RESTARTS_ALLOWED
            log.error(
                "worker %s pid=%s died (exit code %s); %s",
                process.name,
                pid,
                code,
                f"{len(self._deaths)} deaths in {RESTART_WINDOW_S:.0f}s: stopping the server"
                if giving_up
                else "restarting it",
            )
            index = worker_index(process.name)
            for reclaim in hooks.on_worker_death:
                try:
                    reclaim(index if index is not None else -1, pid)
                except Exception:  # reclaiming is best effort; the restart must still happen
                    log.exception("reclaiming worker %s pid=%s failed", process.name, pid)
            if giving_up:
                self._fail()
                return
            process.restart()
