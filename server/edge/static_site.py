"""The built dashboard (server/static/, written by scripts/build-dashboard) served at `/`.

Owns: file lookup, the SPA fallback (a browser opening a client route such as /accounts/3 gets
index.html, while scripts and every /api/, /v1/, /backend-api/ or /health/ path keep the JSON 404),
cache headers (hashed assets for a year, index.html revalidated every time) and gzip, computed once per
file per worker.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from server.errors import NotFound, unknown_path_message

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
NOT_CLIENT_ROUTES = ("/api/", "/v1/", "/backend-api/", "/health/")
NOT_CLIENT_ROUTE_NAMES = ("/api", "/v1", "/backend-api", "/health")
COMPRESSIBLE = (
    "text/",
    "application/javascript",
    "application/json",
    "image/svg+xml",
    "application/manifest",
)
MIN_COMPRESS_BYTES = 1024
IMMUTABLE = "public, max-age=31536000, immutable"  # Vite puts a content hash in every name under assets/
REVALIDATE = "no-cache"
SHORT = "public, max-age=3600"
READ_METHODS = ("GET", "HEAD")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str
    cache_control: str


class StaticSite:
    """The files of one build, indexed by URL path at start; contents read (and gzipped) on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: dict[str, Path] = {}
        if root.is_dir():
            for path in root.rglob("*"):
                if path.is_file():
                    self.paths["/" + path.relative_to(root).as_posix()] = path
        self._loaded: dict[str, StaticFile] = {}

    @property
    def built(self) -> bool:
        return "/index.html" in self.paths

    async def file(self, url_path: str) -> StaticFile | None:
        loaded = self._loaded.get(url_path)
        if loaded is None:
            path = self.paths.get(url_path)
            if path is None:
                return None
            loaded = await asyncio.get_running_loop().run_in_executor(None, _load, url_path, path)
            self._loaded[url_path] = loaded
        return loaded


def _load(url_path: str, path: Path) -> StaticFile:
    body = path.read_bytes()
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type == "application/javascript":
        content_type += "; charset=utf-8"
    compressible = content_type.startswith(COMPRESSIBLE) and len(body) >= MIN_COMPRESS_BYTES
    if url_path == "/index.html":
        cache = REVALIDATE
    elif url_path.startswith("/assets/"):
        cache = IMMUTABLE
    else:
        cache = SHORT
    return StaticFile(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0) if compressible else None,
        content_type=content_type,
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        cache_control=cache,
    )


def install(app: Sanic, root: Path = STATIC_DIR) -> None:
    """Routes for / and every other GET path no other route claims; `app.ctx.static_site` is the build
    they serve (tests put another folder there)."""
    app.ctx.static_site = StaticSite(root)

    # Every method, so that a POST to an unknown path stays a 404 rather than becoming a 405. Errors are
    # JSON (server/errors.py renders them all); named, Sanic need not parse these handlers' source to
    # guess it each time an app is made (see tests/support/ast_turns.py for why parsing is kept rare).
    @app.route("/", methods=ALL_METHODS, name="dashboard_index", error_format="json")
    async def dashboard_index(request: Request) -> HTTPResponse:
        if request.method not in READ_METHODS:
            raise NotFound(unknown_path_message(request))
        return await _serve(request, request.app.ctx.static_site, "/index.html")

    @app.route("/<path:path>", methods=ALL_METHODS, name="dashboard_files", error_format="json")
    async def dashboard_files(request: Request, path: str) -> HTTPResponse:
        site: StaticSite = request.app.ctx.static_site
        url_path = request.path
        if request.method in READ_METHODS:
            if url_path in site.paths and url_path != "/index.html":
                return await _serve(request, site, url_path)
            if _is_client_route(request):
                return await _serve(request, site, "/index.html")
        raise NotFound(unknown_path_message(request))


def _is_client_route(request: Request) -> bool:
    """A browser opening a dashboard page (/accounts/3): not a missing file (/assets/x.js), not an API
    path, and not a script (curl, SDKs), which should keep getting the JSON 404."""
    url_path = request.path
    if url_path.startswith(NOT_CLIENT_ROUTES) or url_path in NOT_CLIENT_ROUTE_NAMES:
        return False
    if "." in url_path.rsplit("/", 1)[-1]:
        return False
    return "text/html" in request.headers.get("accept", "")


async def _serve(request: Request, site: StaticSite, url_path: str) -> HTTPResponse:
    found = await site.file(url_path)
    if found is None:
        if url_path == "/index.html":
            raise NotFound(
                f"{unknown_path_message(request)} The dashboard is not built here: run "
                "scripts/build-dashboard (needs Node.js 20.19+)."
            )
        raise NotFound(unknown_path_message(request))
    headers = {"cache-control": found.cache_control, "etag": found.etag, "vary": "accept-encoding"}
    if request.headers.get("if-none-match") == found.etag:
        return HTTPResponse(status=304, headers=headers)
    body = found.body
    if found.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = found.gzipped
        headers["content-encoding"] = "gzip"
    if request.method == "HEAD":
        headers["content-length"] = str(len(body))
        return HTTPResponse(status=200, headers=headers, content_type=found.content_type)
    return HTTPResponse(body, status=200, headers=headers, content_type=found.content_type)
