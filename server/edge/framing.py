"""Requests Sanic's HTTP/1 parser refuses (bad framing, a head past its size limit): answered 400 or 431
in our error shape before any request middleware runs. Owns that answer.

Sanic answers a head it cannot parse through the app's error path, request middleware included, on a stand-in
request (method NONE, no headers): our auth middleware then judged it and answered 401 sign_in_required, and
a head too large came out as "413 body too large". Sanic closes these connections itself (the parser never
got to a point where the next request starts), which is what keeps a smuggled request unread.
"""

from __future__ import annotations

from sanic import Request, Sanic
from sanic.exceptions import BadRequest, ExpectationFailed, PayloadTooLarge

from server.errors import HeadersTooLarge, MalformedRequest, ProxyError, render

# Above the drain's refusal (1000): the connection closes either way, and the client learns why.
FIRST = 10_000


def refusal(exception: BaseException) -> ProxyError | None:
    """Our error for what the parser raised while reading a head (None: not a parser error)."""
    # Before routing, a body has not been read yet: a size error can only be the head's.
    if isinstance(exception, PayloadTooLarge):
        return HeadersTooLarge("The request's headers exceed the server's size limit.")
    if isinstance(exception, BadRequest):
        return MalformedRequest(f"The request is not valid HTTP/1.1 ({exception}).")
    if isinstance(exception, ExpectationFailed):
        return ProxyError(str(exception), status=417, code="expectation_failed")
    return None


def install(app: Sanic) -> None:
    @app.signal("http.lifecycle.exception")
    async def note_parser_error(request: Request, exception: BaseException) -> None:
        # Dispatched before the error path runs the request middleware; a routed request's errors
        # (a bad chunk in a body, say) are its route's to answer.
        if request.route is None and (error := refusal(exception)) is not None:
            request.ctx.parser_error = error

    @app.on_request(priority=FIRST)
    async def answer_parser_error(request: Request):
        error = getattr(request.ctx, "parser_error", None)
        return render(request, error) if error is not None else None
