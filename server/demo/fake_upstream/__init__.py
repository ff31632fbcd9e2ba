"""A faithful fake of the ChatGPT Codex backend and auth.openai.com for the demo, tests and benchmarks.
Run it with `python -m server.demo.fake_upstream --port N`; pytest gets it from
tests/support/fake_upstream_plugin.py."""

from .tokens import CLIENT_ID, mint_auth_json

__all__ = ["CLIENT_ID", "mint_auth_json"]
