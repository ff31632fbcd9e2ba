"""Transcription routes: the Codex CLI's `POST /backend-api/transcribe` and OpenAI's
`POST /v1/audio/transcriptions`, both forwarded (multipart audio) to the upstream `/transcribe` with the
same account choice and failover as model requests."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext

import aiohttp
import orjson
from sanic import Blueprint, Request
from sanic.request.parameters import RequestParameters
from sanic.response import raw, text

from server.auth.guard import authorize_proxy
from server.errors import BadRequest, RequestTooLarge, UpstreamFailed
from server.keys.store import KeyRecord
from server.proxy import pipeline
from server.proxy.failover import Failover
from server.proxy.settlement import Settlement
from server.proxy.trace import JsonAnswer
from server.upstream import headers

bp = Blueprint("transcription")
# Form fields the upstream understands besides the audio; the rest of OpenAI's fields are ours to handle.
_FORWARDED_FIELDS = ("prompt", "language")
_OPENAI_FORMATS = ("json", "text")


@bp.post("/backend-api/transcribe")
async def codex_transcribe(request: Request):
    status, body = await _transcribe(request, authorize_proxy(request))
    return raw(body, status=status, content_type="application/json")


@bp.post("/v1/audio/transcriptions")
async def openai_transcriptions(request: Request):
    key = authorize_proxy(request)
    form = _form(request)
    response_format = form.get("response_format") or "json"
    if response_format not in _OPENAI_FORMATS:
        raise BadRequest(
            f"response_format {response_format!r} is not available through the ChatGPT backend; "
            "use 'json' or 'text'.",
            param="response_format",
            code="unsupported_parameter",
        )
    if not form.get("model"):
        raise BadRequest(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    status, body = await _transcribe(request, key)
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
        raise UpstreamFailed('The upstream answered the transcription with something other than {"text": …}.')
    transcript = answer["text"]
    if response_format == "text":
        return text(transcript)
    return raw(orjson.dumps({"text": transcript}), content_type="application/json")


async def _transcribe(request: Request, key: KeyRecord | None) -> tuple[int, bytes]:
    ctx = request.app.ctx.proxy
    limit = ctx.settings.transcription_max_bytes
    if len(request.body or b"") > limit:
        raise RequestTooLarge(
            f"The audio upload is {len(request.body)} bytes; the limit is {limit} bytes "
            "(CODEX_LB_TRANSCRIPTION_MAX_BYTES)."
        )
    if not request.content_type.startswith("multipart/form-data"):
        raise BadRequest("Send the audio as multipart/form-data with a 'file' part.", param="file")
    files = request.files  # parsed with the form
    audio = files.get("file") if files is not None else None
    if audio is None:
        raise BadRequest(
            "Missing required multipart part: 'file'.", param="file", code="missing_required_parameter"
        )
    parts = _form(request)
    fields = {name: parts.get(name) for name in _FORWARDED_FIELDS if parts.get(name)}

    def form() -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("file", audio.body, filename=audio.name or "audio", content_type=audio.type or None)
        for name, value in fields.items():
            data.add_field(name, value)
        return data

    done = Settlement.http(request, key, model=parts.get("model") or "")
    answer = await pipeline.serve(done, key, _Transcription(request, key, form))
    assert answer is not None, "a Settlement without `report` raises its errors, so serve answers"
    return answer.status, answer.body


def _form(request: Request) -> RequestParameters:
    """The request's form fields. Sanic types `form` Optional, but reading it always parses one (empty
    for a body that is not a form)."""
    form = request.form
    return form if form is not None else RequestParameters()


class _Transcription:
    """A transcription's steps: one multipart call upstream, its JSON answer for the route to shape."""

    __slots__ = ("request", "key", "form")
    # The upstream /transcribe takes no model: the Codex route sends none, and the /v1 route's `model`
    # names an OpenAI transcription model (gpt-4o-transcribe) that the Codex catalog does not list.
    checks_model = False

    def __init__(self, request: Request, key: KeyRecord | None, form: Callable[[], aiohttp.FormData]) -> None:
        self.request, self.key, self.form = request, key, form

    def prepare(self, done: Settlement) -> int:
        # Audio bytes say nothing about tokens: the request counts against request limits and the
        # output allowance only.
        return 0

    def keepalive(self) -> AbstractAsyncContextManager[object]:
        return nullcontext()  # a JSON client waits for its one answer

    async def open(self, done: Settlement, model_plans: frozenset[str] | None) -> JsonAnswer:
        ctx, key = self.request.app.ctx.proxy, self.key
        failover = Failover(ctx, done.trace, None, key.allowed_accounts if key else None)
        return await failover.post(
            ctx.upstream.transcribe_url, self.form, headers.forwardable(self.request.headers)
        )

    async def deliver(self, done: Settlement, answer: JsonAnswer) -> JsonAnswer:
        return answer
