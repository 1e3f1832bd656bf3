"""The command line's choices name exactly what the registries hold."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fabrec import choices
from fabrec.cli import build_parser
from fabrec.datasets.landmarks import choose_training, read_dataset
from fabrec.detect import DETECTORS
from fabrec.errors import FabrecError
from fabrec.heatmaps import DECODERS
from fabrec.runtime import resolve_device


def test_the_names_are_the_registries_keys() -> None:
    assert tuple(DECODERS) == choices.DECODERS
    assert tuple(DETECTORS) == choices.DETECTORS
    assert resolve_device("cpu").type == "cpu" and resolve_device("auto").type in ("cpu", "cuda")
    for mode in choices.SAMPLES:
        assert len(choose_training(list(range(10)), 3, mode, 0)) == 3
    with pytest.raises(FabrecError, match="unknown dataset"):
        read_dataset("nope", ".", "train", None)  # type: ignore[arg-type]


def test_every_cli_choice_list_comes_from_the_registry() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    seen = {}
    for name, cmd in sub.choices.items():
        for act in cmd._actions:
            if act.dest in ("device", "dataset", "eval_dataset", "decoder", "framing", "detector", "sample"):
                seen[(name, act.dest)] = tuple(act.choices)
    want = {"device": choices.DEVICES, "dataset": choices.DATASETS, "eval_dataset": choices.DATASETS,
            "decoder": choices.DECODERS, "framing": choices.FRAMINGS, "detector": choices.DETECTORS,
            "sample": choices.SAMPLES}
    assert seen and all(v == want[dest] for (_, dest), v in seen.items()), seen


def test_the_command_line_parses_without_pytorch() -> None:
    code = ("import sys; from fabrec.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
