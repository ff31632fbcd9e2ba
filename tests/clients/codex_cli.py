"""Drives the real Codex CLI (npm `@openai/codex`, pinned in package.json here) from tests.

Owns the throw-away CODEX_HOME (config.toml, auth.json), the flags and environment that keep
`codex exec` non-interactive and offline, a local stand-in for the CLI's ChatGPT side channels, and
the parsing of its `--json` event stream. Wire facts behind the choices: CODEX_WIRE_NOTES.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

CLIENTS_DIR = Path(__file__).resolve().parent
NODE_MODULES = CLIENTS_DIR / "node_modules"
DEFAULT_MODEL = "gpt-5.3-codex"
PROVIDER_ID = "codex-lb"
API_KEY_ENV = "CODEX_LB_API_KEY"
TAIL_CHARS = 4000

_TARGETS = {
    ("linux", "x86_64"): ("codex-linux-x64", "x86_64-unknown-linux-musl"),
    ("linux", "aarch64"): ("codex-linux-arm64", "aarch64-unknown-linux-musl"),
    ("darwin", "x86_64"): ("codex-darwin-x64", "x86_64-apple-darwin"),
    ("darwin", "arm64"): ("codex-darwin-arm64", "aarch64-apple-darwin"),
}


class CodexError(RuntimeError):
    """The CLI is missing, failed, or did not finish in time."""


class CodexNotInstalled(CodexError):
    pass


class CodexTimeout(CodexError):
    pass


class CodexRunFailed(CodexError):
    pass


def codex_binary() -> Path:
    """The native `codex` executable shipped in the npm platform package.

    We run it directly instead of `node_modules/.bin/codex`: on Node < 22 that wrapper spawns the
    binary as a child, so killing the wrapper on timeout leaves the real CLI running with our pipes.
    """
    wrapper = NODE_MODULES / ".bin" / "codex"
    hint = "run `npm ci --prefix tests/clients` (needs the npm registry)"
    if not wrapper.exists():
        raise CodexNotInstalled(f"Codex CLI not installed at {wrapper}: {hint}")
    sysname, machine = os.uname().sysname.lower(), os.uname().machine
    package, triple = _TARGETS.get((sysname, machine), (None, None))
    if package is None:
        raise CodexNotInstalled(f"no Codex CLI build for {sysname}/{machine}")
    binary = NODE_MODULES / "@openai" / package / "vendor" / triple / "bin" / "codex"
    if not binary.exists():
        raise CodexNotInstalled(f"platform package @openai/{package} missing ({binary}): {hint}")
    return binary


def codex_version() -> str:
    """The pinned CLI version, e.g. "0.169.0" (what it sends as `client_version`)."""
    package = json.loads((NODE_MODULES / "@openai" / "codex" / "package.json").read_text())
    return package["version"]


# --- fake ChatGPT credentials ------------------------------------------------------------------


def fake_jwt(claims: Mapping[str, Any]) -> str:
    """An unsigned-verifiable JWT: real header and payload, a fake signature."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = json.dumps({"alg": "RS256", "typ": "JWT", "kid": "fake"}, separators=(",", ":"))
    payload = json.dumps(dict(claims), separators=(",", ":"))
    return f"{part(header.encode())}.{part(payload.encode())}.{part(b'fake-signature')}"


@dataclass(frozen=True, slots=True)
class ChatGPTLogin:
    """What `codex login` would leave in auth.json, for a made-up account."""

    account_id: str = "acct-test-1"
    email: str = "codex-user@example.com"
    plan_type: str = "plus"
    user_id: str = "user-test-1"
    refresh_token: str = "rt-test-1"
    expires_in: int = 3600
    issued_at: int = field(default_factory=lambda: int(time.time()))

    def claims(self) -> dict[str, Any]:
        return {
            "https://api.openai.com/auth": {
                "chatgpt_account_id": self.account_id,
                "chatgpt_plan_type": self.plan_type,
                "chatgpt_user_id": self.user_id,
                "user_id": self.user_id,
            },
            "email": self.email,
            "iat": self.issued_at,
            "exp": self.issued_at + self.expires_in,
        }

    def id_token(self) -> str:
        return fake_jwt({**self.claims(), "aud": ["app_EMoamEEZ73f0CkXaXp7hrann"]})

    def access_token(self) -> str:
        return fake_jwt({**self.claims(), "https://api.openai.com/profile": {"email": self.email}})

    def auth_json(self) -> dict[str, Any]:
        issued = datetime.fromtimestamp(self.issued_at, UTC)
        return {
            "OPENAI_API_KEY": None,
            "tokens": {
                "id_token": self.id_token(),
                "access_token": self.access_token(),
                "refresh_token": self.refresh_token,
                "account_id": self.account_id,
            },
            "last_refresh": issued.isoformat().replace("+00:00", "Z"),
        }


# --- local stand-in for chatgpt_base_url ---------------------------------------------------------


class SideChannel:
    """Answers the CLI's `chatgpt_base_url` calls so nothing leaves 127.0.0.1.

    With provider name "OpenAI" and ChatGPT auth, every turn first needs
    `GET /backend-api/wham/accounts/check` (workspace routing); a failure fails the turn. Plugins,
    MCP apps and settings calls get 404, which the CLI tolerates. The refresh-token URL lands here
    too (404) unless the caller passes its own.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        if request.path.endswith("/wham/accounts/check"):
            return web.json_response(accounts_check(request.headers.get("chatgpt-account-id", "")))
        return web.json_response({"detail": "not served by the test side channel"}, status=404)


def accounts_check(account_id: str) -> dict[str, Any]:
    """A `/wham/accounts/check` answer the CLI accepts for one personal workspace.

    `workspace_backend_origin` must be an https origin; the CLI only applies it to provider URLs on
    the chatgpt_base_url origin, so it is never dialled while the provider lives elsewhere.
    """
    entry = {
        "id": account_id,
        "name": None,
        "structure": "personal",
        "plan_type": "plus",
        "workspace_backend_origin": "https://127.0.0.1:9",
        "account_routing_override": "NO_CONSTRAINT",
        "profile_picture_url": None,
        "is_deactivated": False,
        "is_fedramp_compliant_workspace": False,
        "can_access_with_session": True,
        "sso_connection_name": None,
    }
    return {"accounts": [entry], "account_ordering": [account_id], "default_account_id": account_id}


# --- one run ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodexRun:
    """What one `codex exec --json` run produced."""

    returncode: int
    stdout: str
    stderr: str
    events: tuple[dict[str, Any], ...]
    final_message: str | None
    seconds: float
    side_requests: tuple[tuple[str, str], ...] = ()
    codex_home: Path | None = None

    @property
    def completed(self) -> bool:
        return self.returncode == 0 and any(e.get("type") == "turn.completed" for e in self.events)

    def items(self, item_type: str | None = None) -> list[dict[str, Any]]:
        """Completed items (`agent_message`, `command_execution`, `error`, …) in order."""
        items = [e["item"] for e in self.events if e.get("type") == "item.completed" and "item" in e]
        return [i for i in items if item_type is None or i.get("type") == item_type]

    def errors(self) -> list[str]:
        """Messages of `error` events and `turn.failed` (reconnects, fallbacks, failures)."""
        found = [e.get("message", "") for e in self.events if e.get("type") == "error"]
        found += [e["error"].get("message", "") for e in self.events if e.get("type") == "turn.failed"]
        return found + [i.get("message", "") for i in self.items("error")]

    def describe(self) -> str:
        events = "\n".join(json.dumps(e)[:300] for e in self.events[-12:])
        return (
            f"codex exec exited {self.returncode} after {self.seconds:.1f}s\n"
            f"--- last events ---\n{events}\n--- stderr tail ---\n{self.stderr[-TAIL_CHARS:]}"
        )

    def check(self) -> CodexRun:
        if not self.completed:
            raise CodexRunFailed(self.describe())
        return self


async def run_codex_exec_async(
    prompt: str,
    *,
    base_url: str,
    auth_json: Mapping[str, Any] | None = None,
    api_key: str | None = None,
    model: str = DEFAULT_MODEL,
    websockets: bool = False,
    token_url: str | None = None,
    chatgpt_base_url: str | None = None,
    provider_name: str = "OpenAI",
    cwd: str | Path | None = None,
    codex_home: str | Path | None = None,
    timeout: float = 60,
    sandbox: str | None = None,
    request_compression: bool = True,
    extra_config: Mapping[str, Any] | None = None,
    provider_config: Mapping[str, Any] | None = None,
    extra_args: tuple[str, ...] = (),
    extra_env: Mapping[str, str] | None = None,
    rust_log: str | None = None,
    check: bool = True,
) -> CodexRun:
    """Run `codex exec --json PROMPT` once against `base_url` (…/backend-api/codex) and parse it.

    Auth: `api_key` → `env_key = "CODEX_LB_API_KEY"` (no auth.json); otherwise ChatGPT login from
    `auth_json` (default: `ChatGPTLogin().auth_json()`) with `requires_openai_auth = true`.
    `websockets` sets `supports_websockets`. `sandbox=None` bypasses approvals and sandbox (the
    shell tool runs as the test user); else `-s read-only|workspace-write|danger-full-access`.
    `codex_home` keeps state across runs (it is then not deleted). `check` raises CodexRunFailed
    unless the turn completed; a timeout always kills the CLI and raises CodexTimeout.
    """
    binary = codex_binary()
    side = SideChannel() if chatgpt_base_url is None or token_url is None else None
    if side is not None:
        await side.start()
    home = Path(codex_home) if codex_home is not None else Path(tempfile.mkdtemp(prefix="codex-home-"))
    try:
        side_url = side.base_url if side is not None else ""
        chatgpt = chatgpt_base_url or f"{side_url}/backend-api/"
        _write_home(
            home,
            config=_config_toml(
                model=model,
                base_url=base_url,
                chatgpt_base_url=chatgpt,
                provider_name=provider_name,
                websockets=websockets,
                api_key_mode=api_key is not None,
                extra_config=extra_config or {},
                provider_config=provider_config or {},
            ),
            auth=None if api_key is not None else dict(auth_json or ChatGPTLogin().auth_json()),
        )
        env = _environment(
            home,
            api_key=api_key,
            token_url=token_url or f"{side_url}/oauth/token",
            rust_log=rust_log,
            extra_env=extra_env or {},
        )
        args = [str(binary), "exec", "--json", "--skip-git-repo-check", "--color", "never"]
        args += ["--disable", "unbounded_connection_retries"]
        if not request_compression:
            args += ["--disable", "enable_request_compression"]
        args += ["--dangerously-bypass-approvals-and-sandbox"] if sandbox is None else ["-s", sandbox]
        workdir = Path(cwd) if cwd is not None else home / "work"
        workdir.mkdir(parents=True, exist_ok=True)
        args += ["-C", str(workdir), *extra_args, "--", prompt]
        run = replace(
            await _execute(args, env=env, cwd=workdir, timeout=timeout),
            side_requests=tuple(side.requests) if side is not None else (),
            codex_home=home if codex_home is not None else None,
        )
    finally:
        if side is not None:
            await side.close()
        if codex_home is None:
            shutil.rmtree(home, ignore_errors=True)
    return run.check() if check else run


def run_codex_exec(prompt: str, **options: Any) -> CodexRun:
    """Blocking form of `run_codex_exec_async` (only where no event loop is running)."""
    return asyncio.run(run_codex_exec_async(prompt, **options))


@asynccontextmanager
async def side_channel() -> Any:
    """A SideChannel for callers that run several CLIs against one chatgpt_base_url."""
    side = SideChannel()
    await side.start()
    try:
        yield side
    finally:
        await side.close()


@contextmanager
def temporary_codex_home() -> Iterator[Path]:
    """A CODEX_HOME that outlives single runs (sessions, `codex exec resume`), removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="codex-home-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def parse_events(stdout: str) -> tuple[dict[str, Any], ...]:
    """JSONL events from `codex exec --json`; non-JSON lines are skipped."""
    events = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return tuple(events)


def final_message(events: tuple[dict[str, Any], ...]) -> str | None:
    messages = [
        e["item"].get("text")
        for e in events
        if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "agent_message"
    ]
    return messages[-1] if messages else None


# --- internals -------------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} to config.toml")


def _config_toml(
    *,
    model: str,
    base_url: str,
    chatgpt_base_url: str,
    provider_name: str,
    websockets: bool,
    api_key_mode: bool,
    extra_config: Mapping[str, Any],
    provider_config: Mapping[str, Any],
) -> str:
    top: dict[str, Any] = {
        "model": model,
        "model_provider": PROVIDER_ID,
        "chatgpt_base_url": chatgpt_base_url,
        "check_for_update_on_startup": False,
        **extra_config,
    }
    provider: dict[str, Any] = {
        "name": provider_name,
        "base_url": base_url.rstrip("/"),
        "wire_api": "responses",
        "supports_websockets": websockets,
    }
    provider.update({"env_key": API_KEY_ENV} if api_key_mode else {"requires_openai_auth": True})
    provider.update(provider_config)
    lines = [f"{key} = {_toml_value(value)}" for key, value in top.items()]
    lines += ["", "[analytics]", "enabled = false", "", f'[model_providers."{PROVIDER_ID}"]']
    lines += [f"{key} = {_toml_value(value)}" for key, value in provider.items()]
    return "\n".join(lines) + "\n"


def _write_home(home: Path, *, config: str, auth: dict[str, Any] | None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(config)
    auth_path = home / "auth.json"
    if auth is None:
        auth_path.unlink(missing_ok=True)
        return
    auth_path.write_text(json.dumps(auth, indent=2))
    auth_path.chmod(0o600)


def _environment(
    home: Path,
    *,
    api_key: str | None,
    token_url: str,
    rust_log: str | None,
    extra_env: Mapping[str, str],
) -> dict[str, str]:
    # A clean environment: nothing from the developer's ~/.codex, no proxies, no real keys.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
        "CODEX_REFRESH_TOKEN_URL_OVERRIDE": token_url,
        "CODEX_REVOKE_TOKEN_URL_OVERRIDE": token_url.rsplit("/", 1)[0] + "/revoke",
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    if api_key is not None:
        env[API_KEY_ENV] = api_key
    if rust_log is not None:
        env["RUST_LOG"] = rust_log
    env.update(extra_env)
    return env


async def _execute(args: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> CodexRun:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so a timeout kills shell tools too
    )
    reads = asyncio.gather(proc.stdout.read(), proc.stderr.read())
    try:
        out, err = await asyncio.wait_for(asyncio.shield(reads), timeout)
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        _kill_group(proc.pid)
        try:
            out, err = await asyncio.wait_for(reads, 5)
        except TimeoutError:
            reads.cancel()
            out, err = b"", b"(output lost: pipes still open after kill)"
        await proc.wait()
        stdout = out.decode("utf-8", "replace")
        partial = CodexRun(
            returncode=proc.returncode or -9,
            stdout=stdout,
            stderr=err.decode("utf-8", "replace"),
            events=parse_events(stdout),
            final_message=None,
            seconds=time.monotonic() - started,
        )
        message = f"codex exec timed out after {timeout}s and was killed\n{partial.describe()}"
        raise CodexTimeout(message) from None
    stdout = out.decode("utf-8", "replace")
    events = parse_events(stdout)
    return CodexRun(
        returncode=proc.returncode if proc.returncode is not None else -1,
        stdout=stdout,
        stderr=err.decode("utf-8", "replace"),
        events=events,
        final_message=final_message(events),
        seconds=time.monotonic() - started,
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
