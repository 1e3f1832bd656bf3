"""Pack the shared training data for one call to a GPU machine (<= 64 MiB with the checkout).

UTKFace chips -> 128 px WebP (q70) in ``utk.zip``; HELEN-train images -> longest side <= 288 px
WebP (q85) with their ``.pts`` rescaled, in the 300-W layout, in ``helen.zip``. Pixel centres
are kept when scaling (x' = (x + 0.5) * s - 0.5). AFW is never packed: it is the test set,
evaluated on this machine afterwards. ``--faces NAME=FOLDER`` adds ``fabrec prepare-faces``
output (e.g. CelebA and LFW crops) in ``faces-<k>.zip`` parts of at most ``--part-mb`` each: one
GPU call carries at most 64 MiB with the checkout, so the parts travel in successive calls to
the same warm machine (tools/gpu/README.md).

    python tools/gpu/pack.py --shared ../shared/data --out gpu_pack [--limit N] \
        [--faces celeba=runs/faces/celeba --faces lfw=runs/faces/lfw]
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from fabrec.datasets.pts import format_pts, read_pts  # noqa: E402
from fabrec.io import read_image  # noqa: E402


def webp(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".webp", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise RuntimeError("WebP encoding failed")
    return buf.tobytes()


def pack(shared: Path, out: Path, limit: int = 0, utk_size: int = 128, helen_max: int = 288) -> dict[str, int]:
    """Write ``out/utk.zip`` and ``out/helen.zip``; return their sizes in bytes."""
    out.mkdir(parents=True, exist_ok=True)
    utk = sorted((shared / "utkface").glob("*.jpg"))
    helen = sorted((shared / "300w" / "helen" / "trainset").glob("*.pts"))
    if not utk or not helen:
        raise SystemExit(f"{shared}: expected utkface/*.jpg and 300w/helen/trainset/*.pts")
    if limit:
        utk, helen = utk[:limit], helen[: max(limit // 2, 4)]
    with zipfile.ZipFile(out / "utk.zip.tmp", "w", zipfile.ZIP_STORED) as z:
        for f in utk:
            img = cv2.resize(read_image(f), (utk_size, utk_size), interpolation=cv2.INTER_AREA)
            z.writestr(f"utk/{f.name.split('.')[0]}.webp", webp(img, 70))
    with zipfile.ZipFile(out / "helen.zip.tmp", "w", zipfile.ZIP_STORED) as z:
        for p in helen:
            img_path = next(p.with_suffix(e) for e in (".jpg", ".png") if p.with_suffix(e).exists())
            img = read_image(img_path)
            h, w = img.shape[:2]
            s = min(1.0, helen_max / max(h, w))
            size = (round(w * s), round(h * s))
            if s < 1.0:
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            sx, sy = size[0] / w, size[1] / h
            pts = read_pts(p)
            pts = np.stack([(pts[:, 0] + 0.5) * sx - 0.5, (pts[:, 1] + 0.5) * sy - 0.5], 1)
            z.writestr(f"300w/helen/trainset/{p.stem}.webp", webp(img, 85))
            z.writestr(f"300w/helen/trainset/{p.stem}.pts", format_pts(pts))
    sizes = {}
    for name in ("utk.zip", "helen.zip"):
        (out / f"{name}.tmp").replace(out / name)
        sizes[name] = (out / name).stat().st_size
    return sizes


def pack_faces(sources: dict[str, Path], out: Path, part_bytes: int, limit: int = 0,
               quality: int = 70) -> dict[str, int]:
    """Prepared face crops (``fabrec prepare-faces`` output folders, ``name -> folder``) into
    ``out/faces-<k>.zip`` parts of at most ``part_bytes`` each, re-encoded as WebP at
    ``quality`` (stored: WebP does not compress further), as ``faces/<name>/<relative path>``.
    Each part can be carried to the GPU machine in its own call; ``run_recipe.py`` unpacks
    whatever parts are there."""
    files = []
    for name, folder in sorted(sources.items()):
        found = sorted(p for p in (folder / "faces").rglob("*") if p.is_file())
        files += [(f"faces/{name}/{p.relative_to(folder / 'faces')}", p) for p in found[: limit or None]]
    sizes: dict[str, int] = {}
    k, z, used = 0, None, 0
    for arc, p in files:
        data = webp(read_image(p), quality)
        n = len(data) + 80 + 2 * len(arc)  # local header, central directory entry, name twice
        if z is None or used + n > part_bytes:
            if z is not None:
                z.close()
            k += 1
            z, used = zipfile.ZipFile(out / f"faces-{k}.zip.tmp", "w", zipfile.ZIP_STORED), 0
        z.writestr(str(Path(arc).with_suffix(".webp")), data)
        used += n
    if z is not None:
        z.close()
    for i in range(1, k + 1):
        (out / f"faces-{i}.zip.tmp").replace(out / f"faces-{i}.zip")
        sizes[f"faces-{i}.zip"] = (out / f"faces-{i}.zip").stat().st_size
    return sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    ap.add_argument("--out", default="gpu_pack")
    ap.add_argument("--limit", type=int, default=0, help="first N UTKFace and N/2 HELEN faces (dry runs)")
    ap.add_argument("--faces", action="append", default=[], metavar="NAME=FOLDER",
                    help="a prepare-faces output folder to pack into faces-<k>.zip parts (repeatable)")
    ap.add_argument("--part-mb", type=float, default=44.0,
                    help="largest faces part, MB (a GPU call carries 64 MiB with the checkout)")
    ap.add_argument("--faces-quality", type=int, default=70,
                    help="WebP quality of the packed faces (tools/gpu/README.md: the measured size/quality trade)")
    a = ap.parse_args()
    sizes = pack(Path(a.shared), Path(a.out), a.limit)
    if a.faces:
        sources = {n: Path(f) for n, f in (s.split("=", 1) for s in a.faces)}
        sizes.update(pack_faces(sources, Path(a.out), int(a.part_mb * 1e6), a.limit, a.faces_quality))
    # what the training call checks is all on the machine (carry pack.json with the last part)
    (Path(a.out) / "pack.json").write_text(json.dumps({"parts": sizes}, indent=1) + "\n")
    for k, v in sizes.items():
        print(f"pack: {Path(a.out) / k} {v / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
