"""The windowed reference decoder against the full 9x9 blur, on real heatmaps.

Runs a landmark model over the 300-W AFW faces (ground-truth-derived boxes, as `fabrec eval`),
then decodes every heatmap twice: the full blur of all 128^2 pixels (the paper's decoder as
written) and fabrec's windowed decoder (blur a block of tiles around the peak, then only the
other tiles whose upper bound says they could beat it). Reports how much was blurred,
whether every point is identical, the decode time per face (median, batch 1 and 32), and
network + decoding per face before and after this decoder (interleaved, same process), and
the worst case (peakless heatmaps from random weights).

    python benchmarks/decode_window.py --model default --json benchmarks/results/decode_window.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from fabrec.bench import timed
from fabrec.datasets.landmarks import LandmarkDataset, collate_landmarks, read_dataset
from fabrec.heatmaps import (
    _BLOCK,
    _MAX_EXTRA,
    _blur_argmax_full,
    _blur_argmax_windowed,
    _tile_max,
    decode_reference,
    heatmap_size,
)
from fabrec.landmark_model import LandmarkModel, load_landmark_model
from fabrec.schemes import BUILTIN


def median_ms(fn, x: torch.Tensor, reps: int) -> float:
    return 1000 * statistics.median(timed(lambda: fn(x), reps))


def end_to_end(model: LandmarkModel, crops: torch.Tensor, reps: int) -> dict[str, float]:
    """Network + decoding per face on real crops (channels-last on the CPU, so the heatmaps
    come out channels-last): "before" runs the whole batch and blurs every pixel (the first
    decoder), "after" is the prediction path now (``LandmarkModel.locate``). Interleaved reps."""
    model = model.placed(torch.device("cpu"))
    net = model.net
    itl, gen = net.itl, net.generator

    def before(x: torch.Tensor) -> None:
        hm = itl(gen, net.encoder(x)).float()
        _blur_argmax_full(hm, 9), hm.reshape(hm.shape[0], hm.shape[1], -1).amax(-1)

    def after(x: torch.Tensor) -> None:
        model.locate(x)

    out = {}
    for bs in (1, 32):
        x = crops[:bs].contiguous(memory_format=torch.channels_last)
        before(x), after(x)
        tb, ta = [], []
        for _ in range(reps):
            for fn, ts in ((before, tb), (after, ta)):
                t = time.perf_counter()
                fn(x)
                ts.append(time.perf_counter() - t)
        out[f"e2e_ms_per_face_before_b{bs}"] = 1000 * statistics.median(tb) / bs
        out[f"e2e_ms_per_face_after_b{bs}"] = 1000 * statistics.median(ta) / bs
    return out


def peakless(reps: int) -> dict[str, float]:
    """The worst case: heatmaps without peaks, from the 256-px paper architecture with random
    weights on 4 real face crops. The bound rules nothing out, so every map is blurred in full
    after the first block."""
    from fabrec.sample_photo import face_crops

    model = load_landmark_model("paper-256")
    model.net.eval()
    hm = model.heatmaps(face_crops(model.image_size, 4)).float()
    _, extra = _blur_argmax_windowed(hm, 9, _tile_max(hm))
    return {"peakless_maps_blurred_in_full_pct": 100 * (extra > _MAX_EXTRA).float().mean().item(),
            "peakless_ms_per_face_full_b4": median_ms(lambda t: _blur_argmax_full(t, 9), hm, reps) / 4,
            "peakless_ms_per_face_windowed_b4": median_ms(lambda t: decode_reference(t, native=False), hm, reps) / 4,
            "peakless_ms_per_face_kernel_b4": median_ms(lambda t: decode_reference(t, native=True), hm, reps) / 4}


@torch.no_grad()
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "300w"))
    ap.add_argument("--split", default="afw")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    model = load_landmark_model(a.model)
    model.net.eval()
    res = read_dataset("300w", a.root, a.split, BUILTIN["68"])
    ds = LandmarkDataset(res.samples, BUILTIN["68"], model.image_size, heatmap_size(model.image_size), model.framing.margins)
    maps, crops = [], []
    for b, _ in torch.utils.data.DataLoader(ds, batch_size=32, collate_fn=collate_landmarks):
        if b is not None:
            maps.append(model.heatmaps(b["image"]).float())
            crops.append(b["image"])
    hm = torch.cat(maps)
    full = _blur_argmax_full(hm, 9)
    win, extra = _blur_argmax_windowed(hm, 9, _tile_max(hm))
    fast, _ = decode_reference(hm, native=False)
    kernel, _ = decode_reference(hm, native=True)
    row = {
        "model": a.model, "faces": hm.shape[0], "maps": hm.shape[0] * hm.shape[1],
        "maps_decided_by_first_block_pct": 100 * (extra == 0).float().mean().item(),
        "extra_tiles_per_map_mean": extra.float().mean().item(),
        "maps_blurred_in_full_pct": 100 * (extra > _MAX_EXTRA).float().mean().item(),
        "pixels_blurred_pct": 100 * ((extra <= _MAX_EXTRA) * (_BLOCK**2 + extra) * 64 + (extra > _MAX_EXTRA) * 128**2)
        .float().mean().item() / 128**2,
        "decoder_points_equal_to_full_blur": bool(torch.equal(fast, full.float()) and torch.equal(win, full)),
        "kernel_points_equal_to_full_blur": bool(torch.equal(kernel, full.float())),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads", "torch": torch.__version__,
    }
    for bs in (1, 32):
        x = hm[:bs].contiguous()
        row[f"ms_per_face_full_b{bs}"] = median_ms(lambda t: _blur_argmax_full(t, 9), x, a.reps) / bs
        row[f"ms_per_face_windowed_b{bs}"] = median_ms(lambda t: decode_reference(t, native=False), x, a.reps) / bs
        row[f"ms_per_face_kernel_b{bs}"] = median_ms(lambda t: decode_reference(t, native=True), x, a.reps) / bs
    row.update(end_to_end(model, torch.cat(crops), a.reps))
    row.update(peakless(a.reps))
    print(json.dumps(row, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(row, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
