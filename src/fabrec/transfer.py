"""Transfer from a trained landmark model: the few-shot default of ``train-landmarks``.

When a run starts from a landmark model (``--init-from``; ``auto`` picks the bundled one for
the bundled autoencoder and few images), it takes that model's encoder and transfer layers,
and its heatmap layer when the scheme is the same. A new scheme's heatmap layer starts as
combinations of the trained model's heatmap channels: the layer is linear and has no bias
(``ConvTranspose2d``, weight ``(C, L, 4, 4)``), so a channel that is ``sum_i a_i * heatmap_i`` of
the trained model's ``L`` channels is exactly the layer whose weight slice is
``sum_i a_i * W[:, i]``. The coefficients ``A (L, K)`` are fitted by ridge regression of the new
points' target heatmaps on the trained model's heatmaps over the labelled training crops: a new
point is often a blend of known ones (an eye centre of the six eye-contour points, a nose tip
of the nose points), and training then starts from there instead of from flat maps.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fabrec.config import LMTrainConfig
from fabrec.datasets.landmarks import LandmarkDataset, MemoryDataset, target_heatmaps
from fabrec.errors import FabrecError
from fabrec.faces.framing import Framing
from fabrec.heatmaps import heatmap_size
from fabrec.model import FabRec
from fabrec.model_file import read_model_file
from fabrec.schemes import Scheme

log = logging.getLogger(__name__)

FEW_SHOT_MAX = 100  # --init-from auto transfers from the bundled model up to this many training images
HEATMAP_INITS = ("auto", "small", "he", "combine")


@torch.no_grad()
def fit_combination(source_heatmaps: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-3) -> torch.Tensor:
    """Ridge least squares ``A (L, K)`` with ``targets ~ sum_i A[i, k] * source[:, i]``.

    Args:
        source_heatmaps: ``(N, L, H, W)`` the trained model's heatmaps of the training crops.
        targets: ``(N, K, H, W)`` the new points' target heatmaps.
        ridge: penalty, relative to the mean diagonal of the normal matrix.
    """
    x = source_heatmaps.permute(0, 2, 3, 1).reshape(-1, source_heatmaps.shape[1]).double()
    y = targets.permute(0, 2, 3, 1).reshape(-1, targets.shape[1]).double()
    gram = x.T @ x
    lam = ridge * gram.diagonal().mean().clamp_min(1e-12)
    a = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), x.T @ y)
    return a.float()


@torch.no_grad()
def combined_heatmap_weight(net: FabRec, source_weight: torch.Tensor, crops: torch.Tensor, points: torch.Tensor,
                            sigma: float, batch: int = 16) -> torch.Tensor:
    """The new heatmap layer's weight ``(C, K, 4, 4)`` from a trained one ``source_weight (C, L, 4, 4)``.

    Args:
        net: the model being trained, with the trained model's encoder and transfer layers loaded.
        crops: ``(N, 3, S, S)`` un-augmented training crops (model input space).
        points: ``(N, K, 2)`` their labelled points in crop pixels.
        sigma: the training targets' Gaussian width.
    """
    assert net.itl is not None
    was_training = net.itl.training
    net.eval()
    source = []
    for i in range(0, len(crops), batch):
        feats = net.tail_features(net.trunk(crops[i:i + batch])[0])
        source.append(F.conv_transpose2d(feats, source_weight.to(feats.dtype), stride=2, padding=1))
    heat = torch.cat(source)
    targets = target_heatmaps(points, crops.shape[-1], heat.shape[-1], sigma)
    a = fit_combination(heat, targets)
    fitted = torch.einsum("nlhw,lk->nkhw", heat.double(), a.double()).float()
    log.info("heatmap layer: %d new channels fitted as combinations of %d trained ones (residual %.3g of %.3g)",
             a.shape[1], a.shape[0], float((fitted - targets).pow(2).mean()), float(targets.pow(2).mean()))
    net.itl.train(was_training)
    return torch.einsum("clhw,lk->ckhw", source_weight.float(), a)


def resolve_init_from(init_from: str | Path | None, autoencoder: str | Path, train_count: int) -> str | Path | None:
    """``auto`` (the CLI's default): the bundled landmark model when training on the bundled
    autoencoder with at most FEW_SHOT_MAX images (few-shot: transfer), else nothing (the paper's
    new ITLs); ``none`` -> None; anything else is a model spec, kept."""
    if init_from is None or str(init_from) == "none":
        return None
    if str(init_from) != "auto":
        return init_from
    if str(autoencoder) == "default" and train_count <= FEW_SHOT_MAX:
        log.info("train-landmarks: %d training images: starting from the bundled landmark model "
                 "(--init-from auto; --init-from none trains new ITLs, the paper's way)", train_count)
        return "default"
    return None


def init_from_landmarks(net: FabRec, spec: str | Path, scheme: Scheme,
                        active: list[int]) -> tuple[str, torch.Tensor | None]:
    """Encoder and transfer layers of a landmark model (same ITL set), and its heatmap layer
    when the scheme is the same; returns what was taken and, for a new scheme, the source's
    heatmap weight ``(C, L, 4, 4)`` (the new layer starts fresh or as combinations of it: the
    3x3 transfer layers are scheme-independent, only the last layer maps features to points)."""
    src = replace(read_model_file(spec), source=f"--init-from {spec}")
    if src.kind != "landmarks":
        raise FabrecError(f"--init-from {spec}: not a landmark model")
    if src.itl != active:
        raise FabrecError(f"--init-from {spec}: its ITL set {src.itl} differs from this run's {active}")
    same = list((src.scheme or {}).get("points", [])) == list(scheme.names)
    source_heatmap = src.nets["itl"]["heatmap.weight"].float()
    if not same:
        src.nets["itl"] = {k: v for k, v in src.nets["itl"].items() if not k.startswith("heatmap.")}
    src.load_net("encoder", net.encoder)
    src.load_net("itl", net.itl, strict=same)  # type: ignore[arg-type]
    gen_src = src.nets["generator"]
    own = net.generator.state_dict()
    if any(not torch.allclose(own[k].float(), gen_src[k].float(), rtol=1e-2, atol=1e-3) for k in own if k in gen_src):  # fp16 exports
        raise FabrecError(f"--init-from {spec}: it was trained on another autoencoder than --autoencoder")
    if same:
        return "encoder, transfer layers and heatmap layer", None
    return (f"encoder and transfer layers (a new heatmap layer for the {scheme.num_points}-point scheme)",
            source_heatmap)


def combine_heatmaps(net: FabRec, source: torch.Tensor, train: list, boxes: Any, mc: Any, scheme: Scheme,
                     cfg: LMTrainConfig) -> None:
    """Start the new heatmap layer as fitted combinations of the source model's channels
    (:func:`combined_heatmap_weight`), on at most 100 un-augmented training crops."""
    items = MemoryDataset(LandmarkDataset(train[:100], scheme, mc.image_size, heatmap_size(mc.image_size),
                                          Framing.of(mc).margins, None, cfg.sigma, heatmaps=False,
                                          boxes=None if boxes is None else boxes[:100])).items
    if not items:
        return
    crops = torch.stack([it["image"] for it in items])
    points = torch.stack([it["points"] for it in items])
    net.set_heatmap_layer(combined_heatmap_weight(net, source, crops, points, cfg.sigma))
    log.info("train-landmarks: heatmap layer started as combinations of the source model's %d channels, "
             "fitted on %d training crops (heatmap_init=%s)", source.shape[1], len(items), cfg.heatmap_init)


def start_from(net: FabRec, cfg: LMTrainConfig, init_from: str | Path | None, train: list, boxes: Any,
               scheme: Scheme) -> Any:
    """Take the encoder and transfer layers of ``init_from`` (and fit the new heatmap layer);
    returns the source's heatmap weight for a new scheme, else None."""
    source_heatmap = None
    if init_from is not None:
        taken, source_heatmap = init_from_landmarks(net, init_from, scheme, list(net.itl.active))  # type: ignore[union-attr]
        log.info("train-landmarks: %s initialised from %s", taken, init_from)
        if source_heatmap is not None and cfg.heatmap_init in ("auto", "combine"):
            combine_heatmaps(net, source_heatmap, train, boxes, net.config, scheme, cfg)
    elif cfg.heatmap_init == "combine":
        raise FabrecError("heatmap_init=combine needs --init-from a landmark model of another scheme")
    return source_heatmap

