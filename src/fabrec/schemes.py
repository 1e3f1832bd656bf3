"""Landmark schemes as data: point count, names, flip permutation, normalising points."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from fabrec.errors import FabrecError


@dataclass(frozen=True)
class Scheme:
    """A landmark layout.

    Attributes:
        name: short id (``68``, ``98``, ``19`` or a custom name).
        names: one name per point (length K).
        flip: permutation applied to point indices after a horizontal flip, or None when the
            scheme has no flip pairs (flip augmentation is then disabled).
        norm_points: the two points whose distance normalises errors (outer eye corners), or
            None to normalise by the face box side (AFLW).
    """

    name: str
    names: tuple[str, ...]
    flip: tuple[int, ...] | None
    norm_points: tuple[int, int] | None

    @property
    def num_points(self) -> int:
        return len(self.names)

    @property
    def normaliser(self) -> str:
        """Human-readable normaliser name for reports."""
        if self.norm_points is None:
            return "box size (side of the square face box)"
        i, j = self.norm_points
        if self.name in ("68", "98"):  # the built-in 300-W and WFLW schemes: the outer eye corners
            return f"outer-eye-corner distance (points {i} and {j}, 0-based)"
        return f"distance between {self.names[i]} and {self.names[j]} (points {i} and {j}, 0-based)"

    @property
    def is_ibug68(self) -> bool:
        """Whether this is the 68 300-W (iBUG) points in their order, whatever its name (the
        built-in ``68``, a project made from the 68 template): what head pose is solved from."""
        ref = BUILTIN["68"]
        return self.num_points == 68 and self.flip == ref.flip and self.norm_points == ref.norm_points

    def to_dict(self) -> dict:
        return {
            "name": self.name, "points": list(self.names),
            "flip": list(self.flip) if self.flip is not None else None,
            "norm_points": list(self.norm_points) if self.norm_points is not None else None,
        }

    @staticmethod
    def from_dict(d: dict, where: str = "scheme") -> Scheme:
        """Build from ``{"name", "points": [names] | K, "flip_pairs": [[a, b], ...] or "flip": perm,
        "norm_points": [i, j] | null}``; pairs may use indices or point names."""
        if not isinstance(d, dict):
            raise FabrecError(f"{where}: a scheme must be a mapping")
        pts = d.get("points")
        if isinstance(pts, int) and pts > 0:
            names = tuple(f"p{i}" for i in range(pts))
        elif isinstance(pts, list) and pts and all(isinstance(p, str) for p in pts):
            names = tuple(pts)
        else:
            raise FabrecError(f"{where}: 'points' must be a count or a list of names")
        if len(set(names)) != len(names):
            raise FabrecError(f"{where}: point names must be unique")
        k = len(names)

        def index(v: object) -> int:
            if isinstance(v, str):
                if v not in names:
                    raise FabrecError(f"{where}: unknown point name '{v}'")
                return names.index(v)
            if isinstance(v, int) and 0 <= v < k:
                return v
            raise FabrecError(f"{where}: bad point reference {v!r}")

        flip: tuple[int, ...] | None = None
        if d.get("flip") is not None:
            flip = tuple(index(v) for v in d["flip"])
        elif d.get("flip_pairs"):
            perm = list(range(k))
            for pair in d["flip_pairs"]:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise FabrecError(f"{where}: flip_pairs entries must be [a, b]")
                a, b = index(pair[0]), index(pair[1])
                perm[a], perm[b] = b, a
            flip = tuple(perm)
        if flip is not None and sorted(flip) != list(range(k)):
            raise FabrecError(f"{where}: flip is not a permutation of {k} points")
        if flip is not None and any(flip[flip[i]] != i for i in range(k)):
            raise FabrecError(f"{where}: flip permutation must be its own inverse")
        norm = d.get("norm_points")
        norm_t = None
        if norm is not None:
            if not isinstance(norm, (list, tuple)) or len(norm) != 2:
                raise FabrecError(f"{where}: norm_points must be [i, j] or null")
            norm_t = (index(norm[0]), index(norm[1]))
        return Scheme(str(d.get("name", f"custom{k}")), names, flip, norm_t)


def _pairs_to_perm(k: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    perm = list(range(k))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


def _mirror(a: range, b: range) -> list[tuple[int, int]]:
    return list(zip(a, reversed(b)))


_P68 = (
    _mirror(range(8), range(9, 17))  # jaw
    + _mirror(range(17, 22), range(22, 27))  # brows
    + _mirror(range(31, 33), range(34, 36))  # nostrils
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + _mirror(range(48, 51), range(52, 55)) + _mirror(range(55, 57), range(58, 60))  # outer lip
    + _mirror(range(60, 62), range(63, 65)) + [(65, 67)]  # inner lip
)
_P98 = (
    _mirror(range(16), range(17, 33))
    + [(33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47)]
    + _mirror(range(55, 57), range(58, 60))
    + [(60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73)]
    + _mirror(range(76, 79), range(80, 83)) + _mirror(range(83, 85), range(86, 88))
    + _mirror(range(88, 90), range(91, 93)) + [(93, 95), (96, 97)]
)
_P19 = [(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)]
_N19 = (
    "r_brow_outer", "r_brow_mid", "r_brow_inner", "l_brow_inner", "l_brow_mid", "l_brow_outer",
    "r_eye_outer", "r_eye_centre", "r_eye_inner", "l_eye_inner", "l_eye_centre", "l_eye_outer",
    "nose_r", "nose_tip", "nose_l", "mouth_r", "mouth_centre", "mouth_l", "chin",
)

BUILTIN: dict[str, Scheme] = {
    "68": Scheme("68", tuple(f"p{i}" for i in range(68)), _pairs_to_perm(68, _P68), (36, 45)),
    "98": Scheme("98", tuple(f"p{i}" for i in range(98)), _pairs_to_perm(98, _P98), (60, 72)),
    "19": Scheme("19", _N19, _pairs_to_perm(19, _P19), None),
}


_SIDES = {"left": "right", "right": "left", "l": "r", "r": "l", "lt": "rt", "rt": "lt"}


def _mirror_name(name: str) -> str:
    """``left_eye`` -> ``right_eye``, ``r_ear_lobe`` -> ``l_ear_lobe``, ``LeftBrow`` -> ``RightBrow``:
    the name with its side words swapped (tokens between ``_``/``-``, or Left/Right inside a
    word); the name itself when it names no side."""
    parts = re.split(r"([_-])", name)
    swapped = [_keep_case(t, _SIDES[t.lower()]) if t.lower() in _SIDES else t for t in parts]
    out = "".join(swapped)
    if out == name:
        out = re.sub(r"(?i)left|right", lambda m: _keep_case(m.group(0), _SIDES[m.group(0).lower()]), name)
    return out


def _keep_case(like: str, word: str) -> str:
    return word.upper() if like.isupper() and len(like) > 1 else word.capitalize() if like[:1].isupper() else word


def mirror_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """The left/right pairs a scheme's point names spell out (``left_eye`` / ``right_eye``,
    ``l_mouth`` / ``r_mouth``, ``LeftEar`` / ``RightEar``), each once, in name order."""
    have, pairs = set(names), []
    for n in names:
        m = _mirror_name(n)
        if m != n and m in have and (m, n) not in pairs:
            pairs.append((n, m))
    return pairs


def eye_pair(pairs: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The mirror pair that normalises errors the way 300-W does: eye points (outer corners
    first, then centres or pupils, then any eye pair); None when no pair names an eye."""
    eyes = [p for p in pairs if all("eye" in q.lower() for q in p)]
    for word in ("outer", "corner", "cent", "pupil", ""):
        for p in eyes:
            if word in p[0].lower():
                return p
    return None


def get_scheme(spec: str | Path) -> Scheme:
    """``68``, ``98``, ``19`` or the path of a YAML/JSON scheme file."""
    s = str(spec)
    if s in BUILTIN:
        return BUILTIN[s]
    p = Path(s)
    if not p.is_file():
        raise FabrecError(f"unknown scheme '{s}' (use 68, 98, 19 or a .yaml/.json file)")
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as e:
        raise FabrecError(f"{p}: cannot read scheme ({str(e).splitlines()[0]})") from None
    return Scheme.from_dict(data, str(p))


def flip_points(points: np.ndarray, scheme: Scheme) -> np.ndarray:
    """Reorder mirrored points ``(..., K, 2)`` so index i again means point i."""
    if scheme.flip is None:
        raise ValueError(f"scheme {scheme.name} has no flip permutation")
    return points[..., list(scheme.flip), :]
