"""A faithful fake of the ChatGPT Codex backend and auth.openai.com for tests and benchmarks.
Run it with `python -m tests.fake_upstream --port N`; use it in pytest through `pytest_plugin`."""

from .tokens import CLIENT_ID, mint_auth_json

__all__ = ["CLIENT_ID", "mint_auth_json"]
