"""The HTTP edge, between a socket and a route: framing errors, request intake (who is calling, and their
body under a deadline and a budget), health probes and the built dashboard's static files."""
