"""The answers /api/openapi.json describes, as the dashboard's contract test reads them from
dashboard/tests/api-answers.json. `python -m tests.support.api_answers` rewrites that file from the server."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import aiohttp

from tests.support.live_server import ROOT, serve_in_process
from tests.support.settings import make_settings

SNAPSHOT = ROOT / "dashboard" / "tests" / "api-answers.json"


def answers(description: dict) -> dict[str, dict]:
    """Each operation's success answer by "METHOD /path": its status, media type and schema (none: empty)."""
    found = {}
    for path, operations in description["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if str(status).startswith("2"):
                    [(media_type, content)] = response.get("content", {}).items() or [(None, {})]
                    found[f"{method.upper()} {path}"] = {
                        "status": int(status),
                        "media_type": media_type,
                        "schema": content.get("schema"),
                    }
    return dict(sorted(found.items()))


def render(found: dict[str, dict]) -> str:
    return json.dumps(found, indent=1, sort_keys=True) + "\n"


async def served_description(data_dir: Path) -> dict:
    async with serve_in_process(make_settings(data_dir)) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/api/openapi.json") as response:
                return await response.json()


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        description = asyncio.run(served_description(Path(directory) / "data"))
    SNAPSHOT.write_text(render(answers(description)))
    print(f"wrote {SNAPSHOT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
