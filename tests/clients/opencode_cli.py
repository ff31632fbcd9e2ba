"""Drives the real OpenCode CLI (npm `opencode-ai` 1.18.33) from tests.

package.json here pins its Linux x64 build (`opencode-linux-x64`, the package `opencode-ai` installs on
this platform) as an optional dependency rather than `opencode-ai` itself: the registry reachable here
serves only that platform's package, so a lock with `opencode-ai` (which lists every platform) cannot be
installed by `npm ci`. On other platforms the package is skipped and the tests say so.

Owns a throw-away HOME (so no user config, credentials or cache leak in or out), the config file
README.md shows, and the environment that keeps `opencode run` offline and non-interactive.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

CLIENTS_DIR = Path(__file__).resolve().parent
NODE_MODULES = CLIENTS_DIR / "node_modules"
_PLATFORM_PACKAGES = {("linux", "x86_64"): "opencode-linux-x64", ("linux", "aarch64"): "opencode-linux-arm64"}
# No models.dev download, no self-update, no LSP downloads, no share links: nothing leaves 127.0.0.1.
_OFFLINE_ENV = {
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
}


class OpenCodeNotInstalled(RuntimeError):
    pass


def opencode_binary() -> Path:
    """The native executable of the platform package (the npm wrapper would leave it running on kill)."""
    hint = "run `npm ci --prefix tests/clients` (needs the npm registry)"
    system, machine = os.uname().sysname.lower(), os.uname().machine
    package = _PLATFORM_PACKAGES.get((system, machine))
    if package is None:
        raise OpenCodeNotInstalled(f"no OpenCode build wired up for {system}/{machine}")
    binary = NODE_MODULES / package / "bin" / "opencode"
    if not binary.exists():
        raise OpenCodeNotInstalled(f"OpenCode not installed at {binary}: {hint}")
    return binary


def readme_config(base_url: str, models: dict[str, dict] | None = None) -> dict:
    """The configuration README.md recommends: the built-in `openai` provider pointed at codex-lb."""
    models = models or {
        "gpt-5.4": {
            "name": "GPT-5.4 (codex-lb)",
            "reasoning": True,
            "limit": {"context": 272000, "output": 128000},
            "options": {
                "reasoningEffort": "medium",
                "reasoningSummary": "auto",
                "include": ["reasoning.encrypted_content"],
                "store": False,
            },
        },
        "gpt-5.4-mini": {"name": "GPT-5.4 Mini (codex-lb)", "limit": {"context": 272000, "output": 128000}},
    }
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "openai": {
                "options": {"baseURL": base_url, "apiKey": "{env:CODEX_LB_API_KEY}"},
                "models": models,
            }
        },
        "model": "openai/gpt-5.4",
        "small_model": "openai/gpt-5.4-mini",
    }


def chat_completions_config(base_url: str) -> dict:
    """An OpenAI-compatible (Chat Completions) provider, as other tools configure it."""
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "codex-lb-chat": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "codex-lb (Chat Completions)",
                "options": {"baseURL": base_url, "apiKey": "{env:CODEX_LB_API_KEY}"},
                "models": {"gpt-5.4": {"name": "GPT-5.4"}},
            }
        },
        "model": "codex-lb-chat/gpt-5.4",
        "small_model": "codex-lb-chat/gpt-5.4",
    }


@dataclass(frozen=True, slots=True)
class OpenCodeRun:
    returncode: int
    events: list[dict]  # `--format json` lines
    stderr: str

    @property
    def text(self) -> str:
        return "".join(e["part"].get("text", "") for e in self.events if e.get("type") == "text")

    @property
    def tool_outputs(self) -> list[str]:
        return [
            e["part"]["state"].get("output", "")
            for e in self.events
            if e.get("type") == "tool_use" and e["part"]["state"].get("status") == "completed"
        ]


async def run_opencode(prompt: str, config: dict, *, api_key: str = "sk-clb-unused", timeout: float = 120.0):
    binary = opencode_binary()
    with tempfile.TemporaryDirectory(prefix="opencode-home-") as home_dir:
        home = Path(home_dir)
        project = home / "project"
        project.mkdir()
        config_file = home / "opencode.json"
        config_file.write_text(json.dumps(config))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local/share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local/state"),
            "OPENCODE_CONFIG": str(config_file),
            "CODEX_LB_API_KEY": api_key,
            **_OFFLINE_ENV,
        }
        process = await asyncio.create_subprocess_exec(
            str(binary),
            "run",
            "--format",
            "json",
            prompt,
            cwd=project,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise
        events = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
        return OpenCodeRun(process.returncode, events, stderr.decode(errors="replace")[-4000:])
