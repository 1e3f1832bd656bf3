"""The split rule: which items are held out, by a stable hash of their key (a relative path),
independent of listing order. Light (no PyTorch), so measuring tools in other environments use
the same rule."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def is_validation(key: str, permille: int) -> bool:
    """The split rule: a stable hash of the key (a relative path), independent of listing order."""
    h = int(hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:8], 16)
    return h % 1000 < permille


def hash_split(items: Sequence[T], key: Callable[[T], str], permille: int, val_max: int) -> tuple[list[T], list[T]]:
    """(train, validation) of ``items``: validation takes the keys that hash under
    ``permille`` / 1000, sorted, at most ``val_max`` of them, with every item of those keys (an
    image listed twice never lands on both sides)."""
    keys = sorted({key(it) for it in items if is_validation(key(it), permille)})[:val_max]
    chosen = set(keys)
    val = sorted((it for it in items if key(it) in chosen), key=key)
    return [it for it in items if key(it) not in chosen], val
