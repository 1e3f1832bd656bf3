"""The training batch order: one seeded, resumable sampler shared by every trainer.

Training runs one DataLoader iterator from the first step to the last, so its worker
processes live across epochs. Each batch is a list of ``(epoch, index)`` pairs: the dataset
draws its augmentation from ``(seed, epoch, index)``, which keeps every crop identical
whatever the worker layout and wherever a run was resumed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fabrec.signals import ignore_stop_signals
from fabrec.splits import hash_split, is_validation  # noqa: F401  (the split rule, re-exported)



def sample_key(key: int | tuple[int, int]) -> tuple[int, int]:
    """``(epoch, index)`` from a dataset key: a bare index means epoch 0."""
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    return 0, int(key)


class StepBatches(Sampler[list[tuple[int, int]]]):
    """Batches of ``(epoch, index)`` for steps ``start, start + 1, ...`` (``stop`` or forever).

    Epoch ``e`` visits ``numpy.random.default_rng([seed, salt, e]).permutation(n)``.
    With ``drop_last`` an epoch is ``n // (batch * world)`` steps and rank ``r`` takes the
    ``r``-th of each step's ``world`` slices; otherwise ``ceil(n / batch)`` steps, the last one
    smaller (single process only).
    """

    def __init__(
        self, n: int, batch: int, seed: int, salt: int, drop_last: bool = True, rank: int = 0, world: int = 1
    ) -> None:
        if not drop_last and world > 1:
            raise ValueError("drop_last=False is for a single process")
        self.n, self.batch, self.seed, self.salt = n, batch, seed, salt
        self.drop_last, self.rank, self.world = drop_last, rank, world
        self.steps_per_epoch = n // (batch * world) if drop_last else math.ceil(n / batch)
        self.start, self.stop = 0, None
        if self.steps_per_epoch < 1:
            raise ValueError(f"{n} samples make no batch of {batch} x {world}")

    def set_range(self, start: int, stop: int | None = None) -> None:
        """Iterate from global step ``start`` up to ``stop`` (exclusive; None = no end)."""
        self.start, self.stop = start, stop

    def _perm(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, self.salt, epoch]).permutation(self.n)

    def batch_at(self, step: int) -> list[tuple[int, int]]:
        """The batch of global step ``step`` for this rank."""
        epoch, b = divmod(step, self.steps_per_epoch)
        return self._slice(self._perm(epoch), epoch, b)

    def _slice(self, perm: np.ndarray, epoch: int, b: int) -> list[tuple[int, int]]:
        if self.drop_last:
            lo = (b * self.world + self.rank) * self.batch
        else:
            lo = b * self.batch
        return [(epoch, int(i)) for i in perm[lo : lo + self.batch]]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step, epoch, perm = self.start, -1, np.empty(0, np.int64)
        while self.stop is None or step < self.stop:
            e, b = divmod(step, self.steps_per_epoch)
            if e != epoch:
                epoch, perm = e, self._perm(e)
            yield self._slice(perm, epoch, b)
            step += 1

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("an endless sampler has no length")
        return max(0, self.stop - self.start)


def step_loader(
    dataset: Dataset, sampler: StepBatches, collate_fn: Callable, workers: int, seed: int, device: torch.device
) -> DataLoader:
    """The training loader: iterated once for the whole run, so its workers live across
    epochs. Workers ignore SIGINT/SIGTERM (the loop saves first), and the loader's own seeded
    generator keeps the global RNG -- saved in checkpoints -- untouched."""
    return DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate_fn,
        pin_memory=device.type == "cuda", worker_init_fn=ignore_stop_signals,
        generator=torch.Generator().manual_seed(seed), prefetch_factor=4 if workers > 0 else None,
    )
