"""``fabrec serve``'s label-project API: make a new scheme's labels, train it, preview and export it.

Routes (every one behind the server's token, where one is set; errors ``{"error": "one line"}``):

- ``GET /v1/projects`` -> ``{"projects": [names]}``; ``POST /v1/projects`` ``{"name", "template":
  "5" | "68"}`` or ``{"name", "points": [names], "flip_pairs": [[a, b], ...], "norm_points": [a, b]}``
  (both optional: found from left/right and eye in the names) -> 201, the project;
- ``GET /v1/projects/{name}`` -> ``{"name", "points", "flip_pairs", "norm_points", "normaliser",
  "images": [{"file", "labelled"}], "complete", "model", "suggested_steps", "train": status}``;
- ``PUT /v1/projects/{name}/scheme`` ``{"flip_pairs", "norm_points"}`` -> the project (names and
  labels unchanged; ``[]`` for none / the face box);
- ``POST /v1/projects/{name}/images`` (multipart ``image``) -> 201 ``{"file"}``;
  ``GET /v1/projects/{name}/images/{file}`` -> the photo;
- ``GET|PUT /v1/projects/{name}/labels/{file}`` -> ``{"points": [[x, y] | null, ...]}`` (0-based
  pixel centres, the scheme's order), stored as labelme JSON beside the photo;
- ``POST|GET|DELETE /v1/projects/{name}/train`` -> start (``{"steps": N}`` optional; 409 while a
  job runs) / progress / cancel;
- ``POST /v1/projects/{name}/preview`` (multipart ``image``) -> a result record from the project's model;
- ``GET /v1/projects/{name}/model`` -> ``NAME.safetensors``; ``GET /v1/projects/{name}/labels.zip``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fabrec.io import read_image
from fabrec.label_projects import ProjectError, ProjectStore
from fabrec.serve_requests import ApiError, Gate, Landmarker, answers_errors
from fabrec.train_jobs import TrainingJobs, suggested_steps


class PreviewModels:
    """The project's exported model as a predictor, loaded once per file version."""

    def __init__(self, store: ProjectStore, workers: int) -> None:
        self.store, self.workers = store, workers
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, Landmarker]] = {}

    def get(self, name: str) -> Landmarker:
        from fabrec.predict import LandmarkPredictor

        path = self.store.model_path(name)
        if not path.is_file():
            raise ProjectError(f"project '{name}' has no model yet: press Train", 404)
        stamp = path.stat().st_mtime_ns
        with self._lock:
            hit = self._cache.get(name)
            if hit is None or hit[0] != stamp:
                pred = LandmarkPredictor.from_pretrained(str(path), device="cpu", threads=None)  # the server set them
                hit = self._cache[name] = (stamp, Landmarker(pred, self.workers))
            return hit[1]


def _largest(faces: list) -> Any:
    """The largest of a photo's faces (by box area), or None."""
    return max(faces, key=lambda f: f.box[2] * f.box[3]) if faces else None


class Suggestions:
    """Suggested points for a project's photos (:mod:`fabrec.label_assist`): the project's own
    model once it has one, else the bundled 68-point model's points mapped to the scheme through
    the labelled photos. The 68 points found on each photo are cached by the file's version."""

    def __init__(self, store: ProjectStore, previews: PreviewModels) -> None:
        self.store, self.previews = store, previews
        self._lock = threading.Lock()
        self._found: dict[tuple[str, int], Any] = {}
        self._predictor: Any = None

    def _face68(self, path: Path) -> Any:
        """The bundled model's largest face on a photo (:class:`~fabrec.results.FaceResult`), or None."""
        from fabrec.predict import LandmarkPredictor

        key = (str(path), path.stat().st_mtime_ns)
        with self._lock:
            if self._predictor is None:
                self._predictor = LandmarkPredictor.from_pretrained("default", device="cpu", quality=False, threads=None)
            if key not in self._found:
                self._found[key] = _largest(self._predictor.predict(read_image(path)))
            return self._found[key]

    def _points68(self, path: Path) -> Any:
        face = self._face68(path)
        return None if face is None else face.points

    def order(self, name: str) -> dict[str, Any]:
        """The unlabelled photos, the most instructive first: the head turned furthest from every
        labelled photo's (yaw, from the bundled model's points), then where that model is least
        sure (mean point confidence); each with why. ``{"order": [{"file", "why", "score"}]}``."""
        images = self.store.describe(name)["images"]
        seen = [self._face68(self.store.image(name, i["file"])) for i in images if i["labelled"]]
        yaws = [f.head_pose.yaw for f in seen if f is not None and f.head_pose is not None] or [0.0]
        out = []
        for img in images:
            if img["labelled"]:
                continue
            f = self._face68(self.store.image(name, img["file"]))
            if f is None:
                out.append({"file": img["file"], "score": -1.0, "why": "no face found by the bundled model"})
                continue
            yaw = f.head_pose.yaw if f.head_pose is not None else 0.0
            novelty = min(abs(yaw - y) for y in yaws)
            conf = float(f.confidence.mean())
            out.append({"file": img["file"], "score": round(novelty + 100.0 * (1.0 - conf), 2),
                        "why": f"head turned {yaw:+.0f}° ({novelty:.0f}° from the nearest labelled photo's), "
                               f"the bundled model's confidence {conf:.2f}"})
        return {"order": sorted(out, key=lambda r: -r["score"])}

    def review(self, name: str) -> dict[str, Any]:
        """The fully labelled photos where the project's model and the labels disagree most
        (likely mislabels), worst first: mean point error over the scheme's normaliser, as the
        validation NME divides it (:func:`fabrec.datasets.landmarks.normaliser`).
        ``{"review": [{"file", "error_pct", "worst_point"}]}``."""
        import numpy as np

        from fabrec.datasets.landmarks import normaliser
        from fabrec.datasets.samples import LandmarkSample
        from fabrec.transforms import Box

        model = self.previews.get(name).predictor
        scheme = self.store.scheme(name)
        out = []
        for img in self.store.describe(name)["images"]:
            if img["labelled"] != scheme.num_points:
                continue
            truth = np.array(self.store.labels(name, img["file"]), np.float64)
            faces = model.predict(read_image(self.store.image(name, img["file"])))
            if not faces:
                out.append({"file": img["file"], "error_pct": None, "worst_point": None})
                continue
            pts = min(faces, key=lambda f: float(np.linalg.norm(f.points.mean(0) - truth.mean(0)))).points
            sample = LandmarkSample(self.store.image(name, img["file"]), truth, None, img["file"])
            norm = normaliser(sample, scheme, Box.from_landmarks(truth))  # as the validation NME
            err = np.linalg.norm(pts - truth, axis=1) / max(norm, 1e-6)
            out.append({"file": img["file"], "error_pct": round(100 * float(err.mean()), 2),
                        "worst_point": scheme.names[int(np.argmax(err))]})
        return {"review": sorted(out, key=lambda r: -(r["error_pct"] if r["error_pct"] is not None else 1e9))}

    def suggest(self, name: str, file: str) -> dict[str, Any]:
        """``{"file", "points": [[x, y] | None, ...], "source", "labelled_photos"}``."""
        import numpy as np

        from fabrec.label_assist import fit_mapping, map_points

        target = self.store.image(name, file)
        if self.store.model_path(name).is_file():
            face = _largest(self.previews.get(name).predictor.predict(read_image(target)))
            return {"file": file, "points": None if face is None else np.round(face.points, 2).tolist(),
                    "source": "the project's model", "labelled_photos": self.store.describe(name)["complete"]}
        found, labels = [], []
        for img in self.store.describe(name)["images"]:
            if img["file"] == file or not img["labelled"]:
                continue
            p68 = self._points68(self.store.image(name, img["file"]))
            if p68 is not None:
                found.append(p68)
                labels.append(np.array([[np.nan, np.nan] if q is None else q for q in self.store.labels(name, img["file"])]))
        if not found:
            raise ProjectError("label a photo first: suggestions are learnt from the labelled ones", 409)
        p68 = self._points68(target)
        pts = None if p68 is None else map_points(fit_mapping(found, labels), p68)
        return {"file": file, "points": None if pts is None else np.round(pts, 2).tolist(),
                "source": f"the bundled 68-point model mapped through {len(found)} labelled photo(s)",
                "labelled_photos": len(found)}


class ProjectApi:
    """The handlers of the routes above, on one projects folder (see :func:`project_routes`)."""

    def __init__(self, root: Path, gate: Gate, workers: int = 2) -> None:
        self.gate, self.store = gate, ProjectStore(root)
        self.jobs = TrainingJobs(self.store)
        self.previews = PreviewModels(self.store, workers)
        self.suggestions = Suggestions(self.store, self.previews)

    @answers_errors
    async def import_labels(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        name = request.path_params["name"]
        self.store.folder(name)
        _, data = await self.gate.upload(request, "labels")
        return JSONResponse(await run_in_threadpool(self.store.import_labels, name, data), status_code=201)

    @answers_errors
    async def review(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        self.gate.check(request)
        return JSONResponse(await run_in_threadpool(self.suggestions.review, request.path_params["name"]))

    @answers_errors
    async def next_photos(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        self.gate.check(request)
        return JSONResponse(await run_in_threadpool(self.suggestions.order, request.path_params["name"]))

    @answers_errors
    async def suggest(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        self.gate.check(request)
        got = await run_in_threadpool(self.suggestions.suggest, request.path_params["name"], request.path_params["file"])
        return JSONResponse(got)

    @answers_errors
    async def projects(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        if request.method == "GET":
            self.gate.check(request)
            return JSONResponse({"projects": self.store.names()})
        doc = await self.gate.json(request)
        points = doc.get("points")
        if points is not None and not isinstance(points, list):
            raise ApiError(400, "'points' must be a list of names")
        made = self.store.create(str(doc.get("name", "")), doc.get("template"), points, doc.get("flip_pairs"),
                                 doc.get("norm_points"))
        return JSONResponse(made, status_code=201)

    @answers_errors
    async def scheme(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        doc = await self.gate.json(request)
        name = request.path_params["name"]
        return JSONResponse(self.store.set_roles(name, doc.get("flip_pairs", []), doc.get("norm_points", [])))

    @answers_errors
    async def project(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        self.gate.check(request)
        name = request.path_params["name"]
        info = self.store.describe(name)
        info.update(suggested_steps=suggested_steps(info["complete"]), train=self.jobs.status(name))
        return JSONResponse(info)

    @answers_errors
    async def add_image(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        name = request.path_params["name"]
        self.store.folder(name)
        filename, data = await self.gate.upload(request)
        file = await run_in_threadpool(self.store.add_image, name, filename, data)
        return JSONResponse({"file": file}, status_code=201)

    @answers_errors
    async def image(self, request: Any) -> Any:
        from starlette.responses import FileResponse

        self.gate.check(request)
        return FileResponse(self.store.image(request.path_params["name"], request.path_params["file"]))

    @answers_errors
    async def labels(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        name, file = request.path_params["name"], request.path_params["file"]
        if request.method == "PUT":
            doc = await self.gate.json(request)
            return JSONResponse({"file": file, "labelled": self.store.save_labels(name, file, doc.get("points"))})
        self.gate.check(request)
        return JSONResponse({"file": file, "points": self.store.labels(name, file)})

    @answers_errors
    async def train(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        name = request.path_params["name"]
        if request.method == "POST":
            steps = (await self.gate.json(request)).get("steps")
            if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool)):
                raise ApiError(400, "'steps' must be a whole number")
            return JSONResponse(self.jobs.start(name, steps), status_code=202)
        self.gate.check(request)
        if request.method == "DELETE":
            return JSONResponse(await run_in_threadpool(self.jobs.cancel, name))
        return JSONResponse(self.jobs.status(name))

    @answers_errors
    async def preview(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        model = await run_in_threadpool(self.previews.get, request.path_params["name"])
        filename, rgb = await self.gate.photo(request)
        return JSONResponse(await model.record(filename, rgb))

    @answers_errors
    async def model(self, request: Any) -> Any:
        from starlette.responses import FileResponse

        self.gate.check(request)
        name = request.path_params["name"]
        path = self.store.model_path(name)
        if not path.is_file():
            raise ProjectError(f"project '{name}' has no model yet: press Train", 404)
        return FileResponse(path, media_type="application/octet-stream", filename=path.name)

    @answers_errors
    async def labels_zip(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import Response

        self.gate.check(request)
        name = request.path_params["name"]
        data = await run_in_threadpool(self.store.labels_zip, name)
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}-labels.zip"'})


def project_routes(root: Path, gate: Gate, workers: int = 2) -> tuple[list[Any], Callable[[], None]]:
    """The routes above on the projects folder ``root``, and a function that cancels a running job."""
    from starlette.routing import Route

    api = ProjectApi(root, gate, workers)
    base = "/v1/projects/{name}"
    routes = [Route("/v1/projects", api.projects, methods=["GET", "POST"]), Route(base, api.project),
              Route(base + "/scheme", api.scheme, methods=["PUT"]),
              Route(f"{base}/images", api.add_image, methods=["POST"]), Route(base + "/images/{file}", api.image),
              Route(base + "/labels/{file}", api.labels, methods=["GET", "PUT"]),
              Route(base + "/suggest/{file}", api.suggest), Route(base + "/next", api.next_photos),
              Route(base + "/review", api.review),
              Route(base + "/import", api.import_labels, methods=["POST"]),
              Route(f"{base}/train", api.train, methods=["GET", "POST", "DELETE"]),
              Route(f"{base}/preview", api.preview, methods=["POST"]), Route(f"{base}/model", api.model),
              Route(f"{base}/labels.zip", api.labels_zip)]
    return routes, api.jobs.close
