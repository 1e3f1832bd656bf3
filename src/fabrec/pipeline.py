"""Work ahead of the network: items prepared (read, decoded, faces detected) in a worker thread
while the caller runs the network, in input order, with a bounded number in flight."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def read_ahead(items: Iterable[T], prepare: Callable[[T], R], window: int,
               skip: Callable[[T], bool] = lambda item: False) -> Iterator[tuple[T, R | None]]:
    """``(item, prepare(item))`` in input order, ``prepare`` running in one worker thread at
    most ``window`` items ahead of the caller (OpenCV and PyTorch release the GIL, so reading
    and detecting overlap the network). Items ``skip`` accepts are passed through unprepared
    (``None``), in their places. An exception of ``prepare`` is raised where its item is."""
    source = iter(items)
    ahead: deque[tuple[T, Future | None]] = deque()
    with ThreadPoolExecutor(1, thread_name_prefix="fabrec-ahead") as pool:
        while True:
            while len(ahead) < max(1, window):
                item = next(source, _END)
                if item is _END:
                    break
                ahead.append((item, None if skip(item) else pool.submit(prepare, item)))  # type: ignore[arg-type]
            if not ahead:
                return
            item, job = ahead.popleft()
            yield item, None if job is None else job.result()


_END = object()


def batch_full(regions_per_item: Iterable[Sized], batch_size: int) -> bool:
    """Whether gathered items make a network batch: ``batch_size`` faces (regions) among them,
    or ``batch_size`` items (photos without faces cost reading, not the network)."""
    counts = [len(r) for r in regions_per_item]
    return sum(counts) >= batch_size or len(counts) >= batch_size
