"""``fabrec serve``: landmarks over HTTP (API v1) and a browser page, on Starlette + uvicorn.

Contract (``API_VERSION`` 1):

- ``GET /health`` -> 200 ``{"status": "ok", "model", "scheme", "points", "version", "api", "schema"}``;
- ``POST /v1/landmarks``, multipart field ``image`` -> 200, a result record of the project's
  schema (:mod:`fabrec.results`, ``kind`` ``image``);
- a bad upload -> 400 (no ``image`` field, empty, not a decodable image) or 422 (more pixels
  than ``max_pixels``) with ``{"error": "one line"}``; a body over ``max_bytes`` -> 413; a
  missing or wrong token, where one is set -> 401. The server goes on serving.
- ``GET /`` -> the page (static files from ``fabrec/web``; no build step).

Requests run the (stateless, thread-safe) predictor in worker threads, at most ``workers`` at a
time, so memory stays bounded however many clients wait.
"""

from __future__ import annotations

import hmac
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fabrec import __version__
from fabrec.errors import FabrecError
from fabrec.io import decode_image, header_size
from fabrec.results import SCHEMA, record

if TYPE_CHECKING:  # the predictor (and PyTorch) load only when the app is built
    from fabrec.predict import LandmarkPredictor

log = logging.getLogger(__name__)
API_VERSION = "1"
WEB_DIR = Path(__file__).resolve().parent / "web"


class _TooLarge(Exception):
    pass


def create_app(predictor: LandmarkPredictor, max_bytes: int = 20_000_000, max_pixels: int = 40_000_000,
               token: str | None = None, workers: int = 2) -> Any:
    """The ASGI application around ``predictor`` (see the module docstring)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    gate = threading.BoundedSemaphore(workers)  # taken in the worker thread: right under any event loop

    def predict(rgb: np.ndarray) -> list:
        with gate:
            return predictor.predict(rgb)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def authorised(request: Request) -> bool:
        if token is None:
            return True
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())

    async def body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise _TooLarge
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_bytes:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": predictor.model_name, "scheme": predictor.scheme.name,
                             "points": predictor.scheme.num_points, "version": __version__, "api": API_VERSION,
                             "schema": SCHEMA})

    async def landmarks(request: Request) -> JSONResponse:
        if not authorised(request):
            return error(401, "missing or wrong token (Authorization: Bearer TOKEN)")
        try:
            request._body = await body(request)  # parsed below from memory, within the limit
        except _TooLarge:
            return error(413, f"request body over {max_bytes} bytes")
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=max_bytes)
        except Exception as e:  # noqa: BLE001 - any malformed multipart body is the client's mistake
            return error(400, f"not a multipart/form-data upload ({str(e).splitlines()[0][:80]})")
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            return error(400, "send the photo as the multipart field 'image'")
        data = await upload.read()
        name = Path(upload.filename or "upload").name
        if not data:
            return error(400, f"{name}: empty file")
        size = header_size(data)
        if size is not None and size[0] * size[1] > max_pixels:
            return error(422, f"{name}: {size[0]} x {size[1]} pixels, more than the limit of {max_pixels}")
        try:
            rgb = decode_image(np.frombuffer(data, np.uint8), name)
        except FabrecError as e:
            return error(400, str(e))
        if rgb.shape[0] * rgb.shape[1] > max_pixels:
            return error(422, f"{name}: {rgb.shape[1]} x {rgb.shape[0]} pixels, more than the limit of {max_pixels}")
        faces = await run_in_threadpool(predict, rgb)
        rec = record("image", name, predictor.model_name, predictor.scheme.name, width=rgb.shape[1],
                     height=rgb.shape[0], faces=[f.to_dict() for f in faces])
        return JSONResponse(rec)

    async def page(request: Request) -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    routes = [Route("/health", health), Route("/v1/landmarks", landmarks, methods=["POST"]), Route("/", page),
              Mount("/static", StaticFiles(directory=WEB_DIR), name="static")]
    return Starlette(routes=routes)


def check_bind(host: str, allow_remote: bool, token: str | None) -> None:
    """Loopback by default; any other interface only with ``--allow-remote`` and a token."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return
    if not allow_remote:
        raise FabrecError(f"--host {host}: serving beyond this machine needs --allow-remote and --token")
    if not token:
        raise FabrecError(f"--host {host}: give a --token (or FABREC_TOKEN) that clients must send")
