"""Evaluate a landmark model on a dataset split: metrics.json, predictions, CED plot, grid."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fabrec.datasets.landmarks import LandmarkDataset, read_dataset
from fabrec.errors import FabrecError
from fabrec.heatmaps import heatmap_size
from fabrec.io import atomic_write, write_image_atomic, write_json_atomic
from fabrec.faces.framing import frame_labels, labels_detector
from fabrec.landmark_model import LandmarkModel, predict_dataset
from fabrec.metrics import ced, nme, summarize
from fabrec.registry import DECODERS
from fabrec.runtime import resolve_device
from fabrec.schemes import get_scheme
from fabrec.normalization import to_uint8
from fabrec.visualize import draw_points, grid, heatmap_overlay, plot_ced


def evaluate(
    model: LandmarkModel,
    dataset: str,
    root: str | Path,
    split: str,
    out_dir: str | Path,
    scheme: str | None = None,
    decoder: str | None = None,
    batch_size: int = 32,
    device: str = "auto",
    grid_count: int = 6,
    precision: str | None = None,
    flip: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Run ``model`` over a split and write ``metrics.json``, ``predictions.npz``, ``ced.png``
    and ``grid.png`` (Fig. 5 style: input, reconstruction, prediction, ground truth, heatmaps)
    into ``out_dir``. Returns the metrics dict (NME %, FR@10 %, AUC@10 in [0, 1], count,
    normaliser, per-subset entries). ``progress``: a bar over the batches."""
    dev = resolve_device(device)
    sch = get_scheme(scheme) if scheme else model.scheme
    if sch.num_points != model.scheme.num_points:
        raise FabrecError(f"model predicts {model.scheme.num_points} points, scheme {sch.name} has {sch.num_points}")
    model = _run_as(model, decoder, precision, flip)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = read_dataset(dataset, root, split, sch)
    if not res.samples:
        raise FabrecError(f"{root}: split '{split}' has no usable samples")
    model = model.placed(dev)
    boxes, framing_note = _eval_crops(model, res.samples)
    ds = LandmarkDataset(res.samples, sch, model.image_size, heatmap_size(model.image_size), model.framing.margins, None,
                         heatmaps=False, boxes=boxes)
    pts, conf, norms, idx = predict_dataset(model, ds, batch_size, progress)
    gt = np.stack([ds.samples[i].points for i in idx]) if idx else np.zeros((0, sch.num_points, 2))
    err = nme(pts, gt, norms) if idx else np.zeros(0)
    metrics: dict[str, Any] = {
        **summarize(err),
        "normaliser": sch.normaliser,
        "dataset": dataset, "split": split, "decoder": model.decoder, "precision": model.precision, "flip": model.flip_average,
        "skipped": len(res.samples) - len(idx), "problems": res.problems[:50],
        "auc_integration": "exact (step-function CED integrated from 0 to 10%)",
        "framing": framing_note,
    }
    tags = sorted({t for s in res.samples for t in s.subsets})
    if tags:
        metrics["subsets"] = {
            t: summarize(err[[k for k, i in enumerate(idx) if t in ds.samples[i].subsets]]) for t in tags
        }
    write_json_atomic(out / "metrics.json", metrics)
    _write_predictions(out / "predictions.npz", [ds.samples[i].key for i in idx], pts, conf, gt, err, norms)
    plot_ced({f"{dataset}/{split} (NME {metrics['nme']:.2f}%)": ced(err)}, str(out / "ced.png"),
             "Cumulative error distribution")
    if idx and grid_count > 0:
        write_image_atomic(out / "grid.png", fig5_grid(model.net, ds, pts, idx[:grid_count], model.device))
    return metrics


def _run_as(model: LandmarkModel, decoder: str | None, precision: str | None, flip: bool) -> LandmarkModel:
    """``model`` with another decoder, precision or flip averaging where given."""
    if decoder is not None:
        if decoder not in DECODERS:
            raise FabrecError(f"decoder must be one of {', '.join(DECODERS)}")
        model = replace(model, decoder=decoder)
    if precision is not None:
        model = replace(model, precision=precision)
    return replace(model, flip_average=True) if flip else model


def _write_predictions(path: Path, keys: list[str], pts: np.ndarray, conf: np.ndarray, gt: np.ndarray,
                       err: np.ndarray, norms: np.ndarray) -> None:
    """``predictions.npz`` (atomic): sample keys, points ``(M, K, 2)``, confidence ``(M, K)``,
    ground truth, NME and normaliser per face."""
    def write_npz(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, keys=np.array(keys), points=pts, confidence=conf, ground_truth=gt, nme=err, norm=norms)

    atomic_write(path, write_npz)


def _eval_crops(model: LandmarkModel, samples: list) -> tuple[list | None, str]:
    """The crops a model is evaluated on, framed as it was trained: ``landmarks`` models on the
    ground-truth landmark extent (the paper's protocol), ``detector`` models by the detector on
    each photo (the crop ``predict`` makes), faces it misses by the model's mean shape."""
    if model.framing.rule != "detector":
        top, bottom = model.framing.margins
        return None, f"ground-truth landmark extent grown {top:g} above / {bottom:g} below, squared"
    det = labels_detector()
    fr = frame_labels(samples, det, model.framing)
    return fr.boxes, (f"{det.name} detector's five points, as predict frames faces ({fr.detected} of "
                      f"{len(samples)} found; the others by their labels' fit to the model's mean shape)")


@torch.no_grad()
def fig5_grid(net: Any, ds: LandmarkDataset, pts: np.ndarray, idx: list[int], dev: torch.device) -> np.ndarray:
    """Columns per image; rows: input, reconstruction, prediction (green), ground truth
    (blue), heatmaps over the input."""
    items = [ds[i] for i in idx]
    x = torch.stack([it["image"] for it in items]).to(dev)
    out = net(x, reconstruct=True)
    inp, rec = to_uint8(x), to_uint8(out.reconstruction)
    hm = out.heatmaps.float().cpu().numpy()
    rows: list[list[np.ndarray]] = [[], [], [], [], []]
    for j, it in enumerate(items):
        m = it["matrix"].double().numpy()
        p_crop = pts[j] @ m[:2, :2].T + m[:2, 2]
        rows[0].append(inp[j])
        rows[1].append(rec[j])
        rows[2].append(draw_points(inp[j], p_crop, radius=1))
        rows[3].append(draw_points(inp[j], it["points"].numpy(), radius=1, color=(40, 120, 255)))
        rows[4].append(heatmap_overlay(inp[j], hm[j]))
    return grid([np.stack(r) for r in rows])
