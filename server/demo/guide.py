"""What the demo prints once it is up: where to look, and a curl, an OpenAI SDK snippet and a Codex
CLI config that work against it as they stand (tests run them verbatim)."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from server.demo.extras import DemoContext
from server.edge.static_site import STATIC_DIR

MODEL = "gpt-5.4"
NOT_BUILT = " (not built in this clone: run scripts/build-dashboard, or start with scripts/demo)"


def codex_config(url: str, model: str) -> str:
    """A complete ~/.codex/config.toml for this server (API-key auth is off: any key works locally)."""
    return (
        f'model = "{model}"\n'
        'model_provider = "codex-lb"\n'
        "\n"
        "[model_providers.codex-lb]\n"
        'name = "OpenAI"\n'
        f'base_url = "{url}/backend-api/codex"\n'
        'wire_api = "responses"\n'
        "supports_websockets = true\n"
        'env_key = "CODEX_LB_API_KEY"\n'
    )


def write_codex_home(ctx: DemoContext, model: str) -> Path:
    """A CODEX_HOME of its own, so trying the CLI leaves the user's ~/.codex alone."""
    home = ctx.data_dir / "codex-home"
    home.mkdir(mode=0o700, exist_ok=True)
    (home / "config.toml").write_text(codex_config(ctx.url, model))
    return home


def curl_command(url: str, model: str) -> str:
    body = f'{{"model": "{model}", "messages": [{{"role": "user", "content": "Say hello"}}]}}'
    return f"curl -s {url}/v1/chat/completions -H 'content-type: application/json' -d {shlex.quote(body)}"


def sdk_snippet(url: str, model: str) -> str:
    return (
        "from openai import OpenAI\n"
        f'client = OpenAI(base_url="{url}/v1", api_key="demo")\n'
        f'print(client.responses.create(model="{model}", input="Say hello").output_text)\n'
    )


def cli_command() -> str:
    """`codex-lb` when it is on PATH, else the one next to this Python (a clone's .venv)."""
    beside = Path(sys.executable).parent / "codex-lb"
    return "codex-lb" if shutil.which("codex-lb") == str(beside) or not beside.exists() else str(beside)


def dashboard_built() -> bool:
    return (STATIC_DIR / "index.html").is_file()


def indent(text: str, by: str = "    ") -> list[str]:
    return [by + line if line else "" for line in text.rstrip("\n").splitlines()]


def render(ctx: DemoContext, model: str, codex_home: Path, extra_lines: list[str]) -> str:
    q = shlex.quote
    lines = [
        "",
        "codex-lb demo is running against a fake ChatGPT backend (no real account is used).",
        "",
        f"  Dashboard:   {ctx.url}/" + ("" if dashboard_built() else NOT_BUILT),
        f"  Data dir:    {ctx.data_dir} (deleted when the demo stops)",
        f"  Fake backend: {ctx.fake_url}",
        "  Accounts:    "
        + ", ".join(
            f"{a.email} ({a.plan_type}, {a.primary_used_percent}% of 5 h used)" for a in ctx.accounts
        ),
        *(f"  {line}" for line in extra_lines),
        "",
        "Try it:",
        "",
        "  curl:",
        *indent(curl_command(ctx.url, model)),
        "",
        "  OpenAI SDK (pip install openai; save as hello.py, run python hello.py):",
        *indent(sdk_snippet(ctx.url, model)),
        "",
        f"  Codex CLI (npm install -g @openai/codex): this config.toml is in {codex_home}:",
        *indent(codex_config(ctx.url, model)),
        "  run it without touching your own ~/.codex:",
        *indent(f"CODEX_HOME={q(str(codex_home))} CODEX_LB_API_KEY=demo codex exec 'Say hello'"),
        "",
        "  The pool from the command line:",
        *indent(f"CODEX_LB_DATA_DIR={q(str(ctx.data_dir))} {cli_command()} accounts list"),
        *indent(f"curl -s {ctx.url}/api/accounts"),
        "",
        "Ctrl-C stops the demo, its server and the fake backend.",
    ]
    return "\n".join(lines)
