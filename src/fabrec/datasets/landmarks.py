"""Labelled faces: one entry point to the readers (one module per format) and the crop dataset.

Every reader returns :class:`LandmarkSample` s with 0-based pixel-centre points in the
original image, an optional face box, a normalising distance and subset tags. Files that are
malformed are reported by name through the ``problems`` list and skipped, never silently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fabrec.batch_order import sample_key
from fabrec.config import AugmentConfig
from fabrec.datasets.aflw import read_aflw
from fabrec.datasets.folder import read_folder
from fabrec.datasets.samples import LandmarkSample, ReadResult
from fabrec.datasets.w300 import W300_SPLITS, read_300w, w300_box
from fabrec.datasets.wflw import WFLW_ATTRS, read_wflw
from fabrec.errors import FabrecError
from fabrec.heatmaps import crop_to_heatmap, make_heatmaps
from fabrec.io import read_image
from fabrec.normalization import to_tensor
from fabrec.registry import DATASETS, resolve
from fabrec.schemes import Scheme, flip_points
from fabrec.transforms import Box, augment_matrix, crop_matrix, occlude, transform_points, warp

__all__ = [
    "DATASETS", "LandmarkDataset", "LandmarkSample", "MemoryDataset", "ReadResult", "W300_SPLITS", "WFLW_ATTRS",
    "choose_training", "collate_landmarks", "normaliser", "read_300w", "read_aflw", "read_dataset",
    "read_folder", "read_wflw", "target_heatmaps", "w300_box",
]




def read_dataset(name: str, root: str | Path, split: str, scheme: Scheme) -> ReadResult:
    """Dispatch to the reader for ``name`` (one of :data:`DATASETS`)."""
    if not Path(root).exists():
        raise FabrecError(f"{root}: no such folder")
    reader = resolve(DATASETS, name, "dataset")
    return reader(root, split, scheme)  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- crops
def normaliser(sample: LandmarkSample, scheme: Scheme, box: Box) -> float:
    """Error normaliser in original pixels: eye-corner distance, or the face box side."""
    if scheme.norm_points is None:
        return sample.box_side if sample.box_side is not None else box.side
    i, j = scheme.norm_points
    return float(np.linalg.norm(sample.points[i] - sample.points[j]))


class LandmarkDataset(Dataset):
    """Square crops of annotated faces, with heatmap targets.

    ``dataset[i]`` or ``dataset[(epoch, i)]`` (augmentation drawn from ``(seed, epoch, i)``)
    -> dict with ``image (3, S, S)``, ``heatmaps (K, H, H)`` (unless ``heatmaps=False``: the
    trainer draws them on its device from the points), ``points (K, 2)``
    (crop pixels), ``matrix (3, 3)`` (original -> crop), ``norm`` (normaliser in original
    pixels), ``index``; or None if the image cannot be read (dropped by the collate function).
    ``boxes`` (one per sample, None = the default rule) override the crops, e.g. detector
    framing (:func:`fabrec.faces.framing.frame_labels`).
    """

    def __init__(
        self,
        samples: list[LandmarkSample],
        scheme: Scheme,
        image_size: int,
        heatmap_size: int,
        framing: tuple[float, float] = (0.25, 0.15),
        augment: AugmentConfig | None = None,
        sigma: float = 7.0,
        seed: int = 0,
        heatmaps: bool = True,
        boxes: list[Box | None] | None = None,
    ) -> None:
        self.with_heatmaps = heatmaps
        self.boxes = boxes
        self.samples, self.scheme = samples, scheme
        self.image_size, self.heatmap_size = image_size, heatmap_size
        self.framing, self.augment, self.sigma, self.seed = framing, augment, sigma, seed

    def __len__(self) -> int:
        return len(self.samples)

    def box(self, i: int) -> Box:
        """The crop of sample ``i``: a given crop (``boxes``), the sample's box, or the framing
        rule around its landmarks."""
        if self.boxes is not None and self.boxes[i] is not None:
            return self.boxes[i]  # type: ignore[return-value]
        s = self.samples[i]
        return s.box if s.box is not None else Box.from_landmarks(s.points, *self.framing)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor] | None:
        epoch, i = sample_key(key)
        s = self.samples[i]
        try:
            img = read_image(s.path)
        except FabrecError:
            return None
        box = self.box(i)
        m = crop_matrix(box, self.image_size)
        pts = s.points
        border = "constant"
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, epoch, i])
            a, flipped = augment_matrix(rng, self.image_size, self.augment)
            if flipped and self.scheme.flip is None:  # no pairs: redraw without the flip
                a, flipped = augment_matrix(rng, self.image_size, _no_flip(self.augment))
            m = a @ m
            border = self.augment.border
            crop = warp(img, m, self.image_size, border)
            cp = transform_points(pts, m)
            if flipped:
                cp = flip_points(cp, self.scheme)
            if self.augment.occlusion > 0 and rng.random() < self.augment.occlusion:
                crop = occlude(rng, crop)
        else:
            crop = warp(img, m, self.image_size, border)
            cp = transform_points(pts, m)
        cpt = torch.from_numpy(cp).float()
        item = {
            "image": to_tensor(crop),
            "points": cpt,
            "matrix": torch.from_numpy(m).float(),
            "norm": torch.tensor(normaliser(s, self.scheme, box), dtype=torch.float32),
            "index": torch.tensor(i),
        }
        if self.with_heatmaps:
            item["heatmaps"] = target_heatmaps(cpt[None], self.image_size, self.heatmap_size, self.sigma)[0]
        return item


def target_heatmaps(points: torch.Tensor, crop_size: int, heatmap_size: int, sigma: float) -> torch.Tensor:
    """Training targets for crop-pixel points ``(N, K, 2)``: ``(N, K, H, H)`` Gaussians."""
    return make_heatmaps(crop_to_heatmap(points, crop_size, heatmap_size), heatmap_size, sigma)


def _no_flip(cfg: AugmentConfig) -> AugmentConfig:
    from dataclasses import replace

    return replace(cfg, flip=0.0)


def collate_landmarks(batch: list[dict | None]) -> tuple[dict[str, torch.Tensor] | None, int]:
    """Stack readable samples; return ``(batch dict or None, skipped_count)``."""
    good = [b for b in batch if b is not None]
    if not good:
        return None, len(batch)
    return {k: torch.stack([g[k] for g in good]) for k in good[0]}, len(batch) - len(good)


def choose_training(
    samples: list[LandmarkSample], count: float, mode: str, seed: int
) -> list[LandmarkSample]:
    """Few-shot selection: ``count`` images (int) or a fraction (float in (0, 1]); ``mode``
    ``random`` (seeded sample, the default) or ``first`` (the authors' first-N, for parity)."""
    n = len(samples)
    k = max(1, round(count * n)) if isinstance(count, float) else int(count)
    if k > n:
        raise FabrecError(f"asked for {k} training images, only {n} available")
    if mode == "first":
        return samples[:k]
    if mode != "random":
        raise FabrecError(f"--sample must be random or first, got '{mode}'")
    idx = np.sort(np.random.default_rng(seed).choice(n, k, replace=False))
    return [samples[i] for i in idx]


class MemoryDataset(Dataset):
    """Every readable item of an un-augmented landmark dataset (built with ``heatmaps=False``),
    read once and kept."""

    def __init__(self, ds: LandmarkDataset) -> None:
        self.items = []
        for i in range(len(ds)):
            it = ds[i]
            if it is not None:
                self.items.append(it)
        self.samples, self.image_size = ds.samples, ds.image_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]

