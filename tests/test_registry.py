"""The command line's choices name exactly what the registries hold; every option and its default is documented."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from fabrec import registry as choices
from fabrec.cli import build_parser
from fabrec.datasets.landmarks import choose_training, read_dataset
from fabrec.errors import FabrecError
from fabrec.runtime import resolve_device


def test_every_registry_entry_resolves_to_its_code() -> None:
    from fabrec.architectures import Architecture
    from fabrec.faces.detectors import calibration_of

    for reg in (choices.DATASETS, choices.DECODERS, choices.DETECTORS, choices.ARCHITECTURES):
        for name in reg:
            assert callable(choices.resolve(reg, name, "entry")) or isinstance(
                choices.resolve(reg, name, "entry"), Architecture), name
    for name in choices.DETECTORS:
        assert calibration_of(name) is not None
    with pytest.raises(FabrecError, match="unknown detector 'nope' \\(use one of yunet, opencv, dlib\\)"):
        calibration_of("nope")
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
    want = {"device": choices.DEVICES, "dataset": tuple(choices.DATASETS), "eval_dataset": tuple(choices.DATASETS),
            "decoder": tuple(choices.DECODERS), "framing": choices.FRAMINGS, "detector": tuple(choices.DETECTORS),
            "sample": choices.SAMPLES}
    assert seen and all(v == want[dest] for (_, dest), v in seen.items()), seen


def test_the_command_line_parses_without_pytorch() -> None:
    code = ("import sys; from fabrec.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_command_prints_its_help(capsys) -> None:
    from fabrec.cli import build_parser, main

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for cmd in sub.choices:
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0, cmd
        assert "(default: " in capsys.readouterr().out, cmd


def test_config_flags_name_real_config_keys_and_show_the_configs_default() -> None:
    """Each config-backed flag is declared once (cli_help.CONFIG_KEYS), names a key of its config
    dataclass, and leaves its default to the config (None on the command line)."""
    from fabrec.cli import build_parser
    from fabrec.cli_help import CONFIG_KEYS
    from fabrec.config import AETrainConfig, LMTrainConfig, to_dict

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for cmd, keys in CONFIG_KEYS.items():
        node = to_dict(AETrainConfig() if cmd == "train-ae" else LMTrainConfig())
        dests = {a.dest: a for a in sub.choices[cmd]._actions}
        for dest, key in keys.items():
            d = node
            for part in key.split("."):
                assert part in d, f"{cmd} --{dest}: no config key {key}"
                d = d[part]
            if dest in dests:
                assert dests[dest].default is None, f"{cmd} --{dest} declares its own default"
