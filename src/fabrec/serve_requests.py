"""What every ``fabrec serve`` API route shares: the token, body and pixel limits, upload parsing,
one-line 4xx answers, and a predictor run in a bounded number of worker threads."""

from __future__ import annotations

import functools
import hmac
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fabrec.errors import FabrecError
from fabrec.io import decode_image, header_size
from fabrec.label_projects import ProjectError

if TYPE_CHECKING:  # the predictor (and PyTorch) load only when the app is built
    from fabrec.predict import LandmarkPredictor


@dataclass(frozen=True)
class Gate:
    """What every API request passes: the token (where one is set) and the body and pixel limits."""

    max_bytes: int = 20_000_000
    max_pixels: int = 40_000_000
    token: str | None = None

    def authorised(self, headers: Any) -> bool:
        if self.token is None:
            return True
        given = headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self.token.encode())

    def check(self, request: Any) -> None:
        """ApiError 401 unless the request carries the token (where one is set)."""
        if not self.authorised(request.headers):
            raise ApiError(401, "missing or wrong token (Authorization: Bearer TOKEN)")

    async def body(self, request: Any) -> bytes:
        """The request body of an authorised request, at most ``max_bytes`` (else ApiError 413),
        read before any parsing."""
        self.check(request)
        too_large = ApiError(413, f"request body over {self.max_bytes} bytes")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            raise too_large
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > self.max_bytes:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def upload(self, request: Any, field: str = "image") -> tuple[str, bytes]:
        """(file name, bytes) of the multipart ``field``; ApiError for every client mistake."""
        request._body = await self.body(request)  # parsed below from memory, within the limit
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=self.max_bytes)
        except Exception as e:  # noqa: BLE001 - any malformed multipart body is the client's mistake
            raise ApiError(400, f"not a multipart/form-data upload ({str(e).splitlines()[0][:80]})") from None
        upload = form.get(field)
        if upload is None or isinstance(upload, str):
            raise ApiError(400, f"send the {'photo' if field == 'image' else 'file'} as the multipart field '{field}'")
        data = await upload.read()
        name = Path(upload.filename or "upload").name
        if not data:
            raise ApiError(400, f"{name}: empty file")
        size = header_size(data)
        if size is not None and size[0] * size[1] > self.max_pixels:
            raise ApiError(422, f"{name}: {size[0]} x {size[1]} pixels, more than the limit of {self.max_pixels}")
        return name, data

    async def photo(self, request: Any) -> tuple[str, np.ndarray]:
        """(file name, RGB ``uint8 (H, W, 3)``) of an uploaded photo, decoded and within the limits."""
        name, data = await self.upload(request)
        try:
            rgb = decode_image(np.frombuffer(data, np.uint8), name)
        except FabrecError as e:
            raise ApiError(400, str(e)) from None
        if rgb.shape[0] * rgb.shape[1] > self.max_pixels:
            raise ApiError(422, f"{name}: {rgb.shape[1]} x {rgb.shape[0]} pixels, more than the limit of {self.max_pixels}")
        return name, rgb

    async def json(self, request: Any) -> dict[str, Any]:
        """A JSON object body (token and size checked)."""
        raw = await self.body(request)
        try:
            doc = json.loads(raw or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(400, "the body is not JSON") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "the body must be a JSON object")
        return doc


class ApiError(Exception):
    """A client mistake: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Landmarker:
    """Runs a predictor in worker threads, at most ``workers`` at once (bounded memory)."""

    def __init__(self, predictor: LandmarkPredictor, workers: int = 2) -> None:
        self.predictor = predictor
        self._gate = threading.BoundedSemaphore(workers)  # taken in the worker thread: right under any event loop

    def _predict(self, rgb: np.ndarray) -> list:
        with self._gate:
            return self.predictor.predict(rgb)

    async def record(self, name: str, rgb: np.ndarray) -> dict[str, Any]:
        """The result record (schema ``fabrec-result/1``, kind ``image``) of one photo."""
        from starlette.concurrency import run_in_threadpool

        faces = await run_in_threadpool(self._predict, rgb)
        return self.predictor.image_record(name, rgb, faces)


def answers_errors(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Turn ApiError (and a project store's refusal) raised by ``handler`` into a 4xx JSON answer."""
    from starlette.responses import JSONResponse

    @functools.wraps(handler)
    async def wrapped(*args: Any) -> Any:  # a function's (request) or a method's (self, request)
        try:
            return await handler(*args)
        except (ApiError, ProjectError) as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        except FabrecError as e:  # e.g. an upload that is no image
            return JSONResponse({"error": str(e)}, status_code=400)

    return wrapped


