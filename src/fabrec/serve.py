"""``fabrec serve``: landmarks over HTTP (API v1) and a browser page, on Starlette + uvicorn.

Contract (``API_VERSION`` 1):

- ``GET /health`` -> 200 ``{"status": "ok", "model", "scheme", "points", "version", "api", "schema"}``;
- ``POST /v1/landmarks``, multipart field ``image`` -> 200, a result record of the project's
  schema (:mod:`fabrec.results`, ``kind`` ``image``);
- a bad upload -> 400 (no ``image`` field, empty, not a decodable image) or 422 (more pixels
  than ``max_pixels``) with ``{"error": "one line"}``; a body over ``max_bytes`` -> 413; a
  missing or wrong token, where one is set -> 401. The server goes on serving.
- ``GET /`` -> the page (static files from ``fabrec/web``; no build step);
- with a projects folder, the label-project API of :mod:`fabrec.serve_projects` (make a new
  scheme's labels, train it in the background, preview and export it).

Requests run the (stateless, thread-safe) predictor in worker threads, at most ``workers`` at a
time, so memory stays bounded however many clients wait.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fabrec import __version__
from fabrec.errors import FabrecError
from fabrec.results import SCHEMA
from fabrec.serve_projects import project_routes
from fabrec.serve_requests import Gate, Landmarker, answers_errors

if TYPE_CHECKING:  # the predictor (and PyTorch) load only when the app is built
    from fabrec.predict import LandmarkPredictor

log = logging.getLogger(__name__)
API_VERSION = "1"
WEB_DIR = Path(__file__).resolve().parent / "web"


def create_app(predictor: LandmarkPredictor, max_bytes: int = 20_000_000, max_pixels: int = 40_000_000,
               token: str | None = None, workers: int = 2, projects: str | Path | None = None) -> Any:
    """The ASGI application around ``predictor`` (see the module docstring); ``projects`` adds the
    label-project API (:mod:`fabrec.serve_projects`) on that folder."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    gate = Gate(max_bytes, max_pixels, token)
    landmarker = Landmarker(predictor, workers)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": predictor.model_name, "scheme": predictor.scheme.name,
                             "points": predictor.scheme.num_points, "version": __version__, "api": API_VERSION,
                             "schema": SCHEMA, "projects": projects is not None})

    @answers_errors
    async def landmarks(request: Request) -> JSONResponse:
        name, rgb = await gate.photo(request)
        return JSONResponse(await landmarker.record(name, rgb))

    async def page(request: Request) -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    routes = [Route("/health", health), Route("/v1/landmarks", landmarks, methods=["POST"]), Route("/", page),
              Mount("/static", StaticFiles(directory=WEB_DIR), name="static")]
    closers: list[Callable[[], None]] = []
    if projects is not None:
        extra, close = project_routes(Path(projects), gate, workers)
        routes += extra
        closers.append(close)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        for close in closers:  # a training job does not outlive the server
            close()

    return Starlette(routes=routes, lifespan=lifespan)


def check_port(host: str, port: int) -> None:
    """``port`` (0-65535) free to listen on at ``host``, checked before the model loads: a
    :class:`FabrecError` line otherwise (in use, or not this machine's address)."""
    import socket

    if not 0 <= port <= 65535:
        raise FabrecError(f"--port {port}: give a TCP port between 0 and 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise FabrecError(f"--host {host}: cannot be resolved ({e.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise FabrecError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror or e}); "
                              "is another server running there? Give another --port") from None


def check_bind(host: str, allow_remote: bool, token: str | None) -> None:
    """Loopback by default; any other interface only with ``--allow-remote`` and a token."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return
    if not allow_remote:
        raise FabrecError(f"--host {host}: serving beyond this machine needs --allow-remote and --token")
    if not token:
        raise FabrecError(f"--host {host}: give a --token (or FABREC_TOKEN) that clients must send")
