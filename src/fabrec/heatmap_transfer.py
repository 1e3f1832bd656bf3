"""A new scheme's heatmap layer started as combinations of a trained model's heatmap channels.

The heatmap layer is linear and has no bias (``ConvTranspose2d``, weight ``(C, L, 4, 4)``), so a
channel that is ``sum_i a_i * heatmap_i`` of the trained model's ``L`` channels is exactly the
layer whose weight slice is ``sum_i a_i * W[:, i]``. The coefficients ``A (L, K)`` are fitted by
ridge regression of the new points' target heatmaps on the trained model's heatmaps over the
labelled training crops: a new point is often a blend of known ones (an eye centre of the six
eye-contour points, a nose tip of the nose points), and training then starts from there
instead of from flat maps.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from fabrec.datasets.landmarks import target_heatmaps
from fabrec.model import FabRec

log = logging.getLogger(__name__)


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
