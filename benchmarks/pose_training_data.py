"""The large-pose training set: HELEN-train and the training part of the shared AFLW2000-3D
half, as one folder of links (nothing copied) that ``fabrec train-landmarks --dataset folder``
reads.

    python benchmarks/pose_training_data.py runs/data/pose_train
    # -> runs/data/pose_train/helen/*.jpg|.pts   (870 HELEN-train faces, 300-W convention)
    #    runs/data/pose_train/aflw2000/*.jpg|.pts (the ~70 % of the AFLW2000-3D half that
    #                                             face_crops.aflw_held_out leaves for training;
    #                                             3-D point convention at large yaw)

The held-out 30 % (``face_crops.aflw_held_out``) never enters; AFW stays for measuring.
``--repeat 30=2,60=4`` links the faces past 30 degrees of |yaw| twice and past 60 four times in
all (``aflw2000_r2/``, ``aflw2000_r3/``, ...), so large poses are drawn more often; train then
without a validation split (``--set val_permille=0``), or copies could sit on both sides.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from face_crops import aflw_held_out  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
log = logging.getLogger("pose_training_data")


def link_folder(src: Path, dest: Path, keep: Callable[[str], bool]) -> int:
    """Link every image with a same-stem ``.pts`` of ``src`` whose stem ``keep`` accepts into
    ``dest``; returns the number of faces linked."""
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for pts in sorted(src.glob("*.pts")):
        if not keep(pts.stem):
            continue
        for f in (pts, *[p for p in src.glob(pts.stem + ".*") if p.suffix.lower() in (".jpg", ".png")]):
            target = dest / f.name
            if target.is_symlink() or target.exists():
                target.unlink()
            target.symlink_to(f.resolve())
        n += 1
    return n


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", help="folder to write the links into (under runs/)")
    ap.add_argument("--repeat", default="", help="YAW=TIMES,...: faces past YAW degrees linked TIMES times in all")
    ap.add_argument("--aflw-min-yaw", type=float, default=0.0,
                    help="leave out AFLW2000-3D faces under this |yaw| (degrees): frontal faces then follow "
                         "HELEN's 300-W convention alone")
    a = ap.parse_args()
    dest = Path(a.dest)
    yaw = {k: abs(float(v["yaw"])) for k, v in json.loads((SHARED / "aflw2000" / "poses.json").read_text()).items()}
    training = lambda s: not aflw_held_out(s) and yaw[s] >= a.aflw_min_yaw  # noqa: E731
    helen = link_folder(SHARED / "300w" / "helen" / "trainset", dest / "helen", lambda s: True)
    aflw = link_folder(SHARED / "aflw2000", dest / "aflw2000", training)
    log.info("%s: %d HELEN-train faces, %d AFLW2000-3D training-part faces", dest, helen, aflw)
    rules = sorted((float(k), int(v)) for k, v in (r.split("=") for r in a.repeat.split(",") if r))
    if rules:
        times = lambda s: max([t for lo, t in rules if yaw[s] >= lo], default=1)  # noqa: E731
        for r in range(2, max(t for _, t in rules) + 1):
            n = link_folder(SHARED / "aflw2000", dest / f"aflw2000_r{r}",
                            lambda s, r=r: training(s) and times(s) >= r)
            log.info("  copy %d: %d large-pose faces", r, n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
