"""labelme annotation files: one JSON per image, one ``point`` shape per landmark.

labelme stores ``{"shapes": [{"label": NAME, "points": [[x, y]], "shape_type": "point"}, ...],
"imagePath": ...}`` with continuous image coordinates (the top-left pixel spans 0..1), so a
point at a pixel's centre reads ``i + 0.5``; fabrec's 0-based pixel centres are those values
minus 0.5. Labels are matched to the scheme's point names (or to their 0-based indices).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fabrec.errors import FabrecError
from fabrec.schemes import Scheme


def is_labelme(data: Any) -> bool:
    """True for a parsed labelme document."""
    return isinstance(data, dict) and isinstance(data.get("shapes"), list)


def labelme_points(data: dict[str, Any], scheme: Scheme, name: str, partial: bool = False) -> np.ndarray:
    """``(K, 2)`` 0-based pixel-centre points in the scheme's order from a labelme document.

    Shapes other than points are ignored; every scheme point must appear exactly once, or at
    most once with ``partial`` (work in progress: unlabelled points are NaN rows).
    """
    index = {n: i for i, n in enumerate(scheme.names)}
    index.update({str(i): i for i in range(scheme.num_points)})
    pts = np.full((scheme.num_points, 2), np.nan)
    seen: set[int] = set()
    for shape in data["shapes"]:
        if not isinstance(shape, dict) or shape.get("shape_type", "point") != "point":
            continue
        label = str(shape.get("label", "")).strip()
        if label not in index:
            raise FabrecError(f"{name}: label '{label}' is not a point of scheme {scheme.name}")
        i = index[label]
        if i in seen:
            raise FabrecError(f"{name}: point '{label}' labelled twice")
        try:
            (x, y), *_ = shape["points"]
            pts[i] = (float(x) - 0.5, float(y) - 0.5)
        except (KeyError, TypeError, ValueError):
            raise FabrecError(f"{name}: shape '{label}' has no [x, y] point") from None
        seen.add(i)
    missing = [scheme.names[i] for i in range(scheme.num_points) if i not in seen]
    if missing and not partial:
        raise FabrecError(f"{name}: {len(missing)} of {scheme.num_points} points missing "
                          f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})")
    if not np.isfinite(pts[sorted(seen)]).all():
        raise FabrecError(f"{name}: non-finite coordinates")
    return pts


def labelme_doc(image_name: str, points: np.ndarray, names: list[str] | tuple[str, ...], height: int,
                width: int) -> dict[str, Any]:
    """A labelme document of point shapes from 0-based pixel-centre ``points (K, 2)`` named ``names``."""
    shapes = [{"label": n, "points": [[float(x) + 0.5, float(y) + 0.5]], "group_id": None,
               "shape_type": "point", "flags": {}} for n, (x, y) in zip(names, points)]
    return {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_name,
            "imageData": None, "imageHeight": height, "imageWidth": width}


def write_labelme(path: str | Path, image_name: str, points: np.ndarray, names: list[str] | tuple[str, ...],
                  height: int, width: int) -> None:
    """Write 0-based pixel-centre points as a labelme file (for tests and conversions)."""
    Path(path).write_text(json.dumps(labelme_doc(image_name, points, names, height, width), indent=1))
