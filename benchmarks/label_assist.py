"""How good the page's suggestions are before a project has a model: the bundled 68-point
model's points mapped to a 5-point scheme (eye centres, nose tip, mouth corners, from the
300-W annotation) through N labelled photos (``fabrec.label_assist``), on other HELEN-train
photos: the share of suggested points within 2 % of the face's size (the diagonal of the
annotation's extent) of the truth -- the ones a user would not drag -- per point too. The
``all_others`` row maps through every other photo (leave one out): what more labels can give
at most with this model, and the interactions per photo it implies (drags + one accept, as a
share of one click per point from scratch).

    python benchmarks/label_assist.py --json benchmarks/results/label_assist.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fabrec.datasets.pts import read_pts
from fabrec.io import write_json_atomic
from fabrec.label_assist import fit_mapping, map_points
from fabrec.predict import LandmarkPredictor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def five(t: np.ndarray) -> np.ndarray:
    return np.stack([t[36:42].mean(0), t[42:48].mean(0), t[30], t[48], t[54]])


def _row(e: np.ndarray) -> dict:
    """Suggestion errors ``(photos, 5)`` over the face diagonal -> the table row."""
    off = e >= 0.02
    return {"within_2pct": round(float((~off).mean()), 3), "within_2pct_per_point": (~off).mean(0).round(3).tolist(),
            "mean_error_pct": round(100 * float(e.mean()), 2),
            "interactions_share": round(float(np.mean(off.sum(1) + (~off).any(1))) / e.shape[1], 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--photos", type=int, default=60)
    a = ap.parse_args()
    pred = LandmarkPredictor.from_pretrained("default", quality=False)
    found, truth = [], []
    for f in sorted((SHARED / "300w" / "helen" / "trainset").glob("*.jpg"))[: a.photos]:
        t = read_pts(f.with_suffix(".pts"))
        faces = pred.predict(f)
        if faces:
            c = t.mean(0)
            found.append(min(faces, key=lambda x: float(np.linalg.norm(x.points.mean(0) - c))).points)
            truth.append(t)
    res = {"photos": len(found), "scheme": "5 points from the 300-W annotation", "threshold": "2% of the extent's diagonal",
           "by_labelled": {}}
    test = range(10, len(found))
    for n in (1, 2, 3, 5, 10):
        w = fit_mapping(found[:n], [five(t) for t in truth[:n]])
        e = np.array([np.linalg.norm(map_points(w, found[i]) - five(truth[i]), axis=1) /
                      np.linalg.norm(np.ptp(truth[i], 0)) for i in test])
        res["by_labelled"][n] = _row(e)
    loo = []
    for i in range(len(found)):
        w = fit_mapping([f for j, f in enumerate(found) if j != i], [five(t) for j, t in enumerate(truth) if j != i])
        loo.append(np.linalg.norm(map_points(w, found[i]) - five(truth[i]), axis=1) / np.linalg.norm(np.ptp(truth[i], 0)))
    res["all_others"] = _row(np.array(loo))
    write_json_atomic(a.json, res)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
