"""`codex-lb demo` / `scripts/demo`: the whole product against a fake ChatGPT backend, in one command.

Starts the fake (server/demo/fake_upstream, shipped with the package) and the server wired to it in a
throw-away data dir, adds three fake accounts, prints what to try, and stops everything on Ctrl-C. Options
that add to the demo (--traffic, later --history) are `DemoExtra`s listed in `extras.EXTRAS`.
"""

from server.demo.session import add_arguments, main

__all__ = ["add_arguments", "main"]
