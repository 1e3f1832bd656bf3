"""Label projects: a new scheme's photos and labels in one folder, as ``fabrec serve`` keeps them.

Layout of a project ``NAME`` under the projects root::

    ROOT/NAME/scheme.yaml           the point scheme (names, flip pairs, normalising points)
    ROOT/NAME/images/PHOTO.jpg      the photos, names made safe on upload
    ROOT/NAME/images/PHOTO.json     labelme files beside them (0 to K point shapes)
    ROOT/NAME/train/                the training run (best.pt, last.pt, metrics.jsonl, log.txt)
    ROOT/NAME/NAME.safetensors      the exported model once training finished

``images/`` is a plain labelled folder: ``fabrec train-landmarks --dataset folder --root
ROOT/NAME/images --scheme ROOT/NAME/scheme.yaml`` trains on it (photos with every point labelled;
partly labelled ones are skipped with a note). Every name a request gives is checked against a
strict pattern and every path resolved inside the root, so no request reaches another file.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from fabrec.datasets.coco import coco_doc
from fabrec.datasets.labelme import labelme_doc, labelme_points
from fabrec.errors import FabrecError
from fabrec.io import atomic_write, decode_image, read_image, write_text_atomic
from fabrec.schemes import Scheme, eye_pair, get_scheme, mirror_pairs

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.(jpg|jpeg|png|webp|bmp)$", re.IGNORECASE)
FIVE = {"name": "five", "points": ["left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right"],
        "flip_pairs": [["left_eye", "right_eye"], ["mouth_left", "mouth_right"]],
        "norm_points": ["left_eye", "right_eye"]}
TEMPLATES = ("5", "68")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class ProjectError(FabrecError):
    """A request the store refuses; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def scheme_document(name: str, template: str | None = None, points: list[str] | None = None,
                    flip_pairs: Any = None, norm_points: Any = None) -> dict[str, Any]:
    """The scheme YAML of a new project: a template (``5``: eye centres, nose tip, mouth corners;
    ``68``: the 300-W points) or the user's point names with their mirror pairs and the two
    points that normalise errors (:func:`point_roles`)."""
    if template == "5":
        return {**FIVE, "name": name}
    if template == "68":
        return {**get_scheme("68").to_dict(), "name": name}
    if template is not None:
        raise ProjectError(f"template must be one of {', '.join(TEMPLATES)}, got '{template}'")
    names = [str(p).strip() for p in (points or []) if str(p).strip()]
    if not 1 <= len(names) <= 200:
        raise ProjectError("give 1 to 200 point names (or a template: 5 or 68)")
    if any(not NAME.match(n) for n in names):
        raise ProjectError("point names: letters, digits, '_' and '-' only, starting with a letter or digit")
    return point_roles({"name": name, "points": names}, flip_pairs, norm_points)


def point_roles(doc: dict[str, Any], flip_pairs: Any = None, norm_points: Any = None) -> dict[str, Any]:
    """``doc`` (a scheme document with point names) with ``flip_pairs`` (``[[a, b], ...]`` of
    point names; None: the left/right pairs the names spell, :func:`fabrec.schemes.mirror_pairs`)
    and ``norm_points`` (``[a, b]``; None: the eye pair among them, else the face box; ``[]``:
    the face box). Checked as a scheme; a bad entry is a 400 naming it."""
    names = list(doc["points"])
    if flip_pairs is None:
        flip_pairs = [list(p) for p in mirror_pairs(names)]
    if not isinstance(flip_pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in flip_pairs):
        raise ProjectError("'flip_pairs' must be a list of [name, name] pairs")
    if norm_points is None:
        eyes = eye_pair([tuple(p) for p in flip_pairs])
        norm_points = list(eyes) if eyes else []
    if not isinstance(norm_points, list) or len(norm_points) not in (0, 2):
        raise ProjectError("'norm_points' must be two point names, or [] to normalise by the face box")
    if any(p[0] == p[1] for p in flip_pairs) or len({n for p in flip_pairs for n in p}) != 2 * len(flip_pairs):
        raise ProjectError("'flip_pairs': each point may be in one pair, with another point")
    out = {"name": doc["name"], "points": names, "flip_pairs": flip_pairs, "norm_points": norm_points or None}
    try:
        Scheme.from_dict(out, "scheme")  # known names, unique, a permutation
    except FabrecError as e:
        raise ProjectError(str(e)) from None
    return out


@dataclass(frozen=True)
class ProjectStore:
    """Projects under ``root`` (created on first use)."""

    root: Path

    def folder(self, name: str) -> Path:
        """The existing project ``name``'s folder (404 when there is none)."""
        p = self._inside(name, NAME, "project name")
        if not (p / "scheme.yaml").is_file():
            raise ProjectError(f"no project '{name}'", 404)
        return p

    def _inside(self, name: str, pattern: re.Pattern[str], what: str, parent: Path | None = None) -> Path:
        if not isinstance(name, str) or not pattern.match(name):
            raise ProjectError(f"{what} '{str(name)[:80]}' is not allowed (letters, digits, '_', '-', '.')")
        base = (parent or self.root).resolve()
        p = (base / name).resolve()
        if p.parent != base:
            raise ProjectError(f"{what} '{name}' is not allowed")
        return p

    def create(self, name: str, template: str | None = None, points: list[str] | None = None,
               flip_pairs: Any = None, norm_points: Any = None) -> dict[str, Any]:
        """Make project ``name`` (409 if it exists) and return its description; ``flip_pairs``
        and ``norm_points`` for own point names as in :func:`point_roles`."""
        p = self._inside(name, NAME, "project name")
        if p.exists():
            raise ProjectError(f"project '{name}' exists", 409)
        doc = scheme_document(name, template, points, flip_pairs, norm_points)
        (p / "images").mkdir(parents=True)
        write_text_atomic(p / "scheme.yaml", yaml.safe_dump(doc, sort_keys=False))
        return self.describe(name)

    def names(self) -> list[str]:
        """Every project's name, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if NAME.match(d.name) and (d / "scheme.yaml").is_file())

    def scheme(self, name: str) -> Scheme:
        return get_scheme(self.folder(name) / "scheme.yaml")

    def set_roles(self, name: str, flip_pairs: Any, norm_points: Any) -> dict[str, Any]:
        """Change the project's mirror pairs and normalising points (:func:`point_roles`; the
        point names and labels stay); returns its description."""
        sch = self.scheme(name)
        doc = point_roles({"name": sch.name, "points": list(sch.names)}, flip_pairs, norm_points)
        write_text_atomic(self.folder(name) / "scheme.yaml", yaml.safe_dump(doc, sort_keys=False))
        return self.describe(name)

    def describe(self, name: str) -> dict[str, Any]:
        """``{"name", "points": [names], "flip_pairs": [[a, b], ...], "norm_points": [a, b] | None,
        "normaliser", "images": [{"file", "labelled"}], "complete", "model"}`` -- ``labelled``
        counts placed points, ``complete`` the fully labelled photos, ``normaliser`` says what
        the validation NME is divided by."""
        p = self.folder(name)
        scheme = self.scheme(name)
        images = []
        for img in sorted((p / "images").iterdir()):
            if FILE.match(img.name):
                pts = _read_labels(img.with_suffix(".json"), scheme)
                images.append({"file": img.name, "labelled": sum(q is not None for q in pts)})
        k = scheme.num_points
        pairs = [] if scheme.flip is None else [[scheme.names[i], scheme.names[j]] for i, j in enumerate(scheme.flip) if i < j]
        norm = None if scheme.norm_points is None else [scheme.names[i] for i in scheme.norm_points]
        return {"name": name, "points": list(scheme.names), "flip_pairs": pairs, "norm_points": norm,
                "normaliser": scheme.normaliser, "images": images,
                "complete": sum(i["labelled"] == k for i in images), "model": self.model_path(name).is_file()}

    def image(self, name: str, file: str) -> Path:
        """Path of photo ``file`` of the project (404 when absent)."""
        p = self._inside(file, FILE, "photo name", self.folder(name) / "images")
        if not p.is_file():
            raise ProjectError(f"project '{name}' has no photo '{file}'", 404)
        return p

    def add_image(self, name: str, filename: str, data: bytes) -> str:
        """Store an uploaded photo (decoded first: only images are kept) under a safe, unused name."""
        images = self.folder(name) / "images"
        rgb = decode_image(np.frombuffer(data, np.uint8), Path(filename).name or "upload")
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(filename).stem).strip("_-")[:60] or "photo"
        ext = Path(filename).suffix.lower()
        if ext not in IMAGE_SUFFIXES:  # decodable but named oddly: kept as PNG
            ext, data = ".png", cv2.imencode(".png", rgb[..., ::-1])[1].tobytes()
        base, n = stem, 1
        while any((images / f"{stem}{s}").exists() for s in (*IMAGE_SUFFIXES, ".json")):  # one stem, one label file
            n += 1
            stem = f"{base}_{n}"
        file = f"{stem}{ext}"
        atomic_write(images / file, lambda tmp: Path(tmp).write_bytes(data))
        return file

    def labels(self, name: str, file: str) -> list[list[float] | None]:
        """The photo's points in the scheme's order, 0-based pixel centres; None where unlabelled."""
        return _read_labels(self.image(name, file).with_suffix(".json"), self.scheme(name))

    def save_labels(self, name: str, file: str, points: Any) -> int:
        """Write the photo's labelme file from ``points`` (K entries, ``[x, y]`` 0-based or None);
        returns the number placed. Points must lie on the photo."""
        scheme = self.scheme(name)
        img = self.image(name, file)
        if not isinstance(points, list) or len(points) != scheme.num_points:
            raise ProjectError(f"'points' must be a list of {scheme.num_points} entries ([x, y] or null)")
        w, h = image_size(img)
        placed, names = [], []
        for n, q in zip(scheme.names, points):
            if q is None:
                continue
            if (not isinstance(q, list) or len(q) != 2 or not all(isinstance(v, (int, float)) for v in q)
                    or not (-0.5 <= q[0] <= w and -0.5 <= q[1] <= h)):
                raise ProjectError(f"point '{n}': {str(q)[:40]} is not an [x, y] on the photo")
            placed.append(q)
            names.append(n)
        doc = labelme_doc(img.name, np.asarray(placed, float).reshape(-1, 2), names, h, w)
        write_text_atomic(img.with_suffix(".json"), json.dumps(doc, indent=1))
        return len(placed)

    def model_path(self, name: str) -> Path:
        p = self._inside(name, NAME, "project name")
        return p / f"{name}.safetensors"

    def labels_zip(self, name: str) -> bytes:
        """scheme.yaml, the photos and their labelme files (the project's labelled folder) and
        the same labels as one COCO keypoints file (``annotations_coco.json``), as a zip."""
        p = self.folder(name)
        scheme = self.scheme(name)
        buf = io.BytesIO()
        entries = []
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            z.write(p / "scheme.yaml", f"{name}/scheme.yaml")
            for f in sorted((p / "images").iterdir()):
                if FILE.match(f.name) or (f.suffix == ".json" and FILE.match(f"{f.stem}.png")):
                    z.write(f, f"{name}/images/{f.name}")
                if FILE.match(f.name):
                    w, h = image_size(f)
                    entries.append((f.name, w, h, _read_labels(f.with_suffix(".json"), scheme)))
            z.writestr(f"{name}/images/annotations_coco.json", json.dumps(coco_doc(entries, scheme.names, name)))
        return buf.getvalue()

    def import_labels(self, name: str, data: bytes) -> dict[str, Any]:
        """Photos with existing labels from a zip -- labelme / point-JSON / ``.pts`` beside each
        photo, or COCO keypoints files (:func:`fabrec.datasets.folder.read_folder`) -- added to
        the project (photos under new safe names, their labels in the scheme's order).
        Returns ``{"imported", "problems"}``."""
        import tempfile

        from fabrec.datasets.folder import read_folder

        scheme = self.scheme(name)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    for m in z.infolist():
                        target = (Path(tmp) / m.filename).resolve()
                        if not target.is_relative_to(Path(tmp).resolve()) or m.is_dir():
                            continue  # nothing is written outside the temporary folder
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(z.read(m))
            except zipfile.BadZipFile:
                raise ProjectError("the upload is not a zip of photos and labels") from None
            res = read_folder(tmp, scheme)
            done, seen = 0, set()
            for s in res.samples:
                if Path(s.path).resolve() in seen:  # one photo labelled twice (a labelme file and a COCO file): once
                    continue
                seen.add(Path(s.path).resolve())
                file = self.add_image(name, Path(s.path).name, Path(s.path).read_bytes())
                self.save_labels(name, file, [[float(x), float(y)] for x, y in s.points])
                done += 1
        return {"imported": done, "problems": [str(p).replace(tmp, "") for p in res.problems][:20]}


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of a photo as training reads it (:func:`fabrec.io.read_image`, EXIF
    orientation applied) and the browser shows it, so a turned phone photo's points fit."""
    try:
        h, w = read_image(path).shape[:2]
    except FabrecError:
        raise ProjectError(f"{path.name}: cannot read the photo", 500) from None
    return w, h


def _read_labels(path: Path, scheme: Scheme) -> list[list[float] | None]:
    """A project labelme file's points in the scheme's order (0-based), None where unlabelled
    (all None when there is no file or it cannot be read)."""
    try:
        pts = labelme_points(json.loads(path.read_text(encoding="utf-8")), scheme, str(path), partial=True)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, FabrecError):
        return [None] * scheme.num_points
    return [None if np.isnan(q).any() else [float(q[0]), float(q[1])] for q in pts]
