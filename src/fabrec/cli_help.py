"""Help for every command-line option: the sentences options share, and every default shown.

:func:`document` fills in the help of options that :mod:`fabrec.cli` declares without one
(the same flag means the same thing in every command) and :class:`DefaultsFormatter` appends
each option's default -- for flags that only override a training config (default ``None`` on
the command line), the config dataclass's own default, so it is never declared twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

#: Option -> sentence, for options whose meaning is the same in every command.
COMMON = {
    "--device": "where to run: auto (a CUDA GPU when there is one, else the CPU), cpu or cuda",
    "--no-progress": "no progress bar (logs and CI)",
    "--set": "override any config key, e.g. --set lr=3e-4 or --set augment.rotate=20 (repeatable)",
    "--seed": "random seed: data order, augmentation and few-shot sampling",
    "--batch-size": "images per training step",
    "--max-steps": "stop after this many steps",
    "--epochs": "stop after this many passes over the training images",
    "--workers": "data-loading worker processes (0: load in the main process)",
    "--decoder": "heatmap -> point decoder: reference (the paper's 9x9 blur + argmax) or subpixel "
                 "(argmax refined by a log-quadratic fit)",
    "--dataset": "dataset layout: 300w, wflw, aflw, or folder (images with labelme / COCO / .pts / JSON "
                 "labels beside them)",
    "--resume": "continue from the run folder's last.pt when there is one",
    "--sample": "how few-shot training images are picked: random (seeded) or first (the authors' first N)",
    "--finetune-steps": "steps of the encoder-finetuning stage (with --finetune-encoder)",
    "--image-size": "input size of the networks in pixels (64 for tests, 128, 256 the paper's largest)",
    "--width": "channel multiplier of the networks (1.0 the paper's; 0.5 the bundled model's)",
    "--checkpoint-every": "save last.pt every this many steps",
    "--config": "YAML recipe (configs/); flags given on the command line override it",
    "--itl": "ITL subset, e.g. 1,2,3,4 or 3,4 (paper Table 7)",
    "--train-count": "N images, P%% of the split, or all",
    "--framing": "how training faces are cropped: 'detector' (default; the YuNet detector on each photo, exactly "
                 "as predict crops faces) or 'landmarks' (the paper's: the labelled points' extent)",
    "--amp": "none (fp32), bf16 (the forward pass under bfloat16 autocast; loss and optimiser in fp32) or auto "
             "(bf16 on CPUs with AMX, where it trains 2.3-2.4x as fast; else none)",
}

#: (command, option) -> sentence, where the same flag means different things.
SPECIFIC = {
    ("train-ae", "--out"): "run folder: checkpoints, samples, metrics.jsonl (created)",
    ("train-landmarks", "--out"): "run folder: last.pt, best.pt, metrics.jsonl, config.yaml (created)",
    ("sweep", "--out"): "folder for one run per size and seed, results.jsonl and table.md (created)",
    ("eval", "--out"): "folder for metrics.json, predictions.npz, ced.png and grid.png (created)",
    ("predict", "--out"): "folder for the results: one JSON per input (or predictions.jsonl / .csv), "
                          "annotated pictures and videos (created)",
    ("demo", "--out"): "folder for the demo's annotated photo, reconstruction and JSON (created)",
    ("generate", "--out"): "image file to write (.png or .jpg)",
    ("interpolate", "--out"): "image file to write (.png or .jpg)",
    ("export", "--out"): "file to write: .onnx (--format onnx) or .safetensors",
    ("boxes", "--out"): "box CSV to write (path,x,y,w,h per face)",
    ("generate", "--model"): "autoencoder or landmark model: 'default', a .safetensors file or a training .pt",
    ("interpolate", "--model"): "autoencoder or landmark model: 'default', a .safetensors file or a training .pt",
    ("export", "--model"): "model to export: 'default', a .safetensors file or a training .pt",
    ("eval", "--model"): "landmark model to evaluate: 'default', a .safetensors file or a training .pt",
    ("sweep", "--autoencoder"): "stage-1 model: 'default' (bundled), a .safetensors export or train-ae's last.pt",
    ("generate", "--count"): "how many random faces",
    ("generate", "--cols"): "faces per row of the grid (0: about square)",
    ("generate", "--seed"): "random seed of the latent vectors",
    ("interpolate", "--steps"): "faces in the row, both ends included",
    ("predict", "--format"): "json: one file per input; jsonl / csv: one predictions file for all (the "
                             "schema is the same: fabrec/schemas/result-1.json)",
    ("predict", "--save-reconstruction"): "also write the first face's crop beside its autoencoder reconstruction",
    ("predict", "--smooth-min-cutoff"): "One-Euro filter cutoff at rest, Hz (lower: smoother, more lag)",
    ("predict", "--smooth-beta"): "One-Euro filter speed coefficient (higher: less lag in fast motion)",
    ("bench", "--backend"): "torch, or onnxruntime on an exported model",
    ("bench", "--batch-size"): "faces per call",
    ("bench", "--reps"): "timed repetitions (after warm-up); the median is reported",
    ("bench", "--json"): "print one JSON line instead of the sentence",
    ("export", "--format"): "onnx (the landmark path, for other runtimes) or safetensors (fp16 weights)",
    ("export", "--with-reconstruction"): "ONNX: also output the autoencoder's reconstruction",
    ("export", "--opset"): "ONNX opset version",
    ("sweep", "--counts"): "training-set sizes: counts (10) or percentages of the split (5%%)",
    ("sweep", "--itl"): "ITL subset, e.g. 1,2,3,4 or 3,4 (paper Table 7)",
    ("sweep", "--finetune-encoder"): "add the encoder-finetuning stage to every run",
    ("sweep", "--eval-dataset"): "dataset layout of the evaluation split (default: the training dataset's)",
    ("sweep", "--eval-root"): "dataset folder of the evaluation split (default: --root)",
    ("sweep", "--eval-split"): "split every run is evaluated on",
    ("sweep", "--max-steps"): "ITL steps of every run",
    ("eval", "--batch-size"): "faces per network batch",
    ("train-landmarks", "--max-steps"): "ITL steps (0: chosen from the number of training images, 50 epochs "
                                        "within 500-3,000)",
    ("train-ae", "--max-steps"): "stop after this many steps (0: run --epochs)",
    ("boxes", "--top"): "grow the landmarks' extent by this share of its height above",
    ("boxes", "--bottom"): "grow the landmarks' extent by this share of its height below",
}

#: Command-line dest -> config key, for flags that override a config dataclass: the one place
#: a flag is tied to its key (the commands build their overrides from it, :func:`config_sets`).
CONFIG_KEYS = {
    "train-ae": {"image_size": "model.image_size", "width": "model.width", "batch_size": "batch_size",
                 "epochs": "epochs", "max_steps": "max_steps", "seed": "seed", "checkpoint_every": "checkpoint_every",
                 "workers": "data.num_workers", "amp": "amp"},
    "train-landmarks": {k: k for k in ("dataset", "root", "split", "scheme", "train_count", "sample", "seed",
                                       "batch_size", "max_steps", "epochs", "decoder", "finetune_steps", "framing",
                                       "amp")}
                       | {"workers": "num_workers", "itl": "itl"},
}
CONFIG_KEYS["sweep"] = CONFIG_KEYS["train-landmarks"]


def config_sets(cmd: str, args: argparse.Namespace, skip: tuple[str, ...] = ()) -> list[str]:
    """``key=value`` overrides (for :func:`fabrec.config.apply_overrides`) of the config-backed
    flags given on the command line (those left at None keep the config's value)."""
    sets = []
    for dest, key in CONFIG_KEYS[cmd].items():
        v = getattr(args, dest, None)
        if v is not None and dest not in skip:
            sets.append(f"{key}={v!r}" if isinstance(v, str) else f"{key}={v}")
    return sets


def _config_type(cmd: str, dest: str) -> type:
    """The command-line type of a config-backed flag, from its dataclass field: int, float, or
    str (strings, and tuples written as text such as ``--itl 1,2``)."""
    from fabrec.config import AETrainConfig, LMTrainConfig

    node: Any = AETrainConfig if cmd == "train-ae" else LMTrainConfig
    hint: Any = node
    for part in CONFIG_KEYS[cmd][dest].split("."):
        hint = typing.get_type_hints(node)[part]
        node = hint
    return hint if hint in (int, float) else str


def add_config_flags(p: Any, cmd: str, dests: tuple[str, ...], choices: dict[str, Any] | None = None) -> None:
    """Add ``--dest`` for each config-backed ``dest`` (:data:`CONFIG_KEYS`) to parser or group
    ``p``: its type from the config dataclass, its default left to the config (None)."""
    for dest in dests:
        p.add_argument("--" + dest.replace("_", "-"), type=_config_type(cmd, dest),
                       choices=(choices or {}).get(dest))


def _config_default(cmd: str, dest: str) -> Any:
    from fabrec.config import AETrainConfig, LMTrainConfig

    key = CONFIG_KEYS.get(cmd, {}).get(dest)
    if key is None:
        return None
    node: Any = AETrainConfig() if cmd == "train-ae" else LMTrainConfig()
    for part in key.split("."):
        node = getattr(node, part)
    if isinstance(node, tuple):
        return ",".join(map(str, node)) or "all"
    return node if not dataclasses.is_dataclass(node) else None


class DefaultsFormatter(argparse.HelpFormatter):
    """Appends every option's default: its own, its config's (``from the config``), ``off`` for
    flags, or ``required``."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if action.required:
            return f"{text} (required)"
        if isinstance(action, argparse._StoreTrueAction):
            return f"{text} (default: off)" if not action.default else text
        if isinstance(action, argparse._StoreFalseAction):  # a --no-... flag: off unless given
            return f"{text} (default: off)" if action.default else text
        if action.default is None or action.default == []:
            cfg = _config_default(getattr(self, "_fabrec_cmd", ""), action.dest)
            if cfg is not None and cfg != "":
                return f"{text} (default: {str(cfg).replace('%', '%%')}, from the config)"
            return f"{text} (default: none)" if action.default == [] else f"{text} (default: not set)"
        return f"{text} (default: %(default)s)"


def document(parser: argparse.ArgumentParser) -> None:
    """Give every option of every sub-command its sentence and the defaults formatter."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for cmd, sp in sub.choices.items():
        sp.formatter_class = _formatter_for(cmd)
        for act in sp._actions:
            if act.option_strings:
                opt = act.option_strings[-1]
                act.help = SPECIFIC.get((cmd, opt)) or act.help or COMMON.get(opt)


def _formatter_for(cmd: str) -> type[argparse.HelpFormatter]:
    return type(f"Formatter_{cmd.replace('-', '_')}", (DefaultsFormatter,), {"_fabrec_cmd": cmd})
