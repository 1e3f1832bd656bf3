"""Command-line interface. Each subcommand parses flags and calls one library function."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fabrec.cli_help import add_config_flags, config_sets, document
from fabrec.errors import FabrecError
from fabrec.faces.detectors import DEFAULT_MIN_SCORE
from fabrec.inference_options import (DETECTION, NETWORK, InferenceOptions, add_inference_flags, options_from_args,
                                      parse_rotations)
from fabrec.registry import AMPS, DATASETS, DECODERS, DEVICES, FRAMINGS, SAMPLES
from fabrec.signals import TrainingInterrupted


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Notes(logging.Handler):
    """The library's ``fabrec.*`` log messages, one line each on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        _note(record.getMessage())


def _show_library_notes() -> None:
    """Route the library's INFO messages (training notes, skipped files) to stderr, once."""
    lib = logging.getLogger("fabrec")
    if not any(isinstance(h, _Notes) for h in lib.handlers):
        lib.addHandler(_Notes())
    lib.setLevel(logging.INFO)


def _add_train_ae(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-ae", help="stage 1: train the adversarial autoencoder on unlabeled faces")
    p.add_argument("--data", action="append", default=[], help="folder / image / .txt list (repeatable)")
    p.add_argument("--boxes", action="append", default=[], help="box CSV: generic, VGGFace2 or AffectNet")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--config", help="YAML recipe (flags below override it)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")
    add_config_flags(p, "train-ae", ("image_size", "width", "batch_size"), {"image_size": (64, 128, 256)})
    add_config_flags(p.add_mutually_exclusive_group(), "train-ae", ("epochs", "max_steps"))
    add_config_flags(p, "train-ae", ("seed", "checkpoint_every", "workers"))
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt if present")
    p.add_argument("--init-from", help="initialise matching tensors from a model: a training .pt, .safetensors "
                   "or bundled name (128 -> 256 growth)")
    p.add_argument("--time-limit", type=float, metavar="MINUTES",
                   help="stop after this much wall-clock time (checkpoint saved, exit 0; --resume goes on)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    add_config_flags(p, "train-ae", ("amp",), {"amp": AMPS})


def cmd_train_ae(a: argparse.Namespace) -> int:
    from fabrec.config import AETrainConfig, apply_overrides, load_yaml
    from fabrec.train_autoencoder import train_autoencoder

    cfg = load_yaml(AETrainConfig, a.config) if a.config else AETrainConfig()
    sets = list(a.set) + config_sets("train-ae", a)
    if a.epochs is not None:
        sets.append("max_steps=0")
    if a.data:
        sets.append("data.paths=[" + ",".join(repr(str(d)) for d in a.data) + "]")
    if a.boxes:
        sets.append("data.boxes=[" + ",".join(repr(str(b)) for b in a.boxes) + "]")
    cfg = apply_overrides(cfg, sets)
    if not cfg.data.paths and not cfg.data.boxes:
        raise FabrecError("train-ae: give at least one --data folder or --boxes file")
    if a.width is not None and a.width <= 0:
        raise FabrecError("--width must be positive")
    if a.time_limit is not None and a.time_limit <= 0:
        raise FabrecError("--time-limit must be a positive number of minutes")
    t0 = time.time()
    res = train_autoencoder(
        cfg, a.out, device=a.device, resume=a.resume, init_from=a.init_from,
        progress=not a.no_progress, time_limit=a.time_limit,
    )
    why = {"time": "time limit reached", "steps": "all steps done"}.get(res.stopped, res.stopped)
    side = f", {100 * res.side_seconds / max(res.seconds, 1e-9):.1f}% of it validating and saving" if res.seconds else ""
    _note(f"train-ae: stopped at step {res.step} ({why}) after {time.time() - t0:.0f} s{side}; "
          f"checkpoint {Path(a.out) / 'last.pt'}")
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    from fabrec.autoencoder import load_autoencoder
    from fabrec.io import write_image_atomic
    from fabrec.visualize import grid

    if a.count < 1:
        raise FabrecError("--count must be at least 1")
    ae = load_autoencoder(a.model)
    faces = ae.sample(a.count, a.seed)
    cols = a.cols or min(8, a.count)
    rows = [faces[i : i + cols] for i in range(0, len(faces), cols)]
    write_image_atomic(a.out, grid(rows))
    _note(f"generate: wrote {a.count} random faces to {a.out}")
    return 0


def cmd_interpolate(a: argparse.Namespace) -> int:
    from fabrec.autoencoder import load_autoencoder
    from fabrec.io import write_image_atomic
    from fabrec.visualize import grid

    if a.steps < 2:
        raise FabrecError("--steps must be at least 2")
    for face in (a.a, a.b):
        if not Path(face).is_file():
            raise FabrecError(f"{face}: no such image")
    ae = load_autoencoder(a.model)
    row = ae.interpolate(ae.crop(a.a), ae.crop(a.b), a.steps)
    write_image_atomic(a.out, grid([row]))
    _note(f"interpolate: wrote {a.steps} faces from {a.a} to {a.b} into {a.out}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from fabrec.demo import run_demo, run_tiny_demo
    from fabrec.weights import WEIGHTS_DIR

    t0 = time.time()
    if a.train_tiny or not (WEIGHTS_DIR / "default.safetensors").exists():
        path = run_tiny_demo(a.out, a.steps, progress=not a.no_progress)
        print(f"demo: trained a tiny autoencoder for {a.steps} steps in {time.time() - t0:.1f} s")
        print(f"demo: input (top) and reconstruction (bottom) written to {path}")
        return 0
    r = run_demo(a.out)
    print(f"demo: {r.faces} face(s), {r.points} points, mean confidence {r.mean_confidence:.2f}, "
          f"quality {r.quality:.2f} ({time.time() - t0:.1f} s)")
    for f in r.files:
        print(f"demo: wrote {f}")
    return 0


def cmd_boxes(a: argparse.Namespace) -> int:
    from fabrec.datasets.boxes import boxes_from_landmarks, write_box_csv

    rows, problems = boxes_from_landmarks(a.pts, a.top, a.bottom)
    for p in problems:
        _note(f"boxes: skipped {p}")
    write_box_csv(a.out, rows)
    _note(f"boxes: wrote {len(rows)} boxes to {a.out} ({len(problems)} skipped)")
    return 0


def _lm_config(a: argparse.Namespace):
    from fabrec.config import LMTrainConfig, apply_overrides, load_yaml

    cfg = load_yaml(LMTrainConfig, a.config) if a.config else LMTrainConfig()
    sets = list(a.set) + config_sets("train-landmarks", a, skip=("itl",))
    if a.itl is not None:
        try:
            itl = [int(v) for v in a.itl.split(",") if v.strip()]
        except ValueError:
            raise FabrecError(f"--itl expects comma-separated layer numbers, got '{a.itl}'") from None
        sets.append(f"itl={itl}")
    if a.finetune_encoder:
        sets.append("finetune_encoder=true")
    cfg = apply_overrides(cfg, sets)
    if not cfg.root:
        raise FabrecError("give --root (the dataset folder)")
    if getattr(a, "time_limit", None) is not None and a.time_limit <= 0:
        raise FabrecError("--time-limit must be a positive number of minutes")
    return cfg


def _add_data_flags(p: argparse.ArgumentParser, split_default: str | None = None) -> None:
    p.add_argument("--dataset", choices=DATASETS)
    p.add_argument("--root", help="dataset folder")
    p.add_argument("--split", default=split_default, help="train / common / challenging / full / private / test / subset / sub-folder")
    p.add_argument("--scheme", help="68, 98, 19 or a scheme .yaml/.json")


def _add_lm_recipe(p: argparse.ArgumentParser) -> None:
    """The training options train-landmarks and sweep share (each overrides a config key)."""
    add_config_flags(p, "train-landmarks", ("sample", "seed", "itl"), {"sample": SAMPLES})
    p.add_argument("--finetune-encoder", action="store_true", help="add the encoder-finetuning stage")
    add_config_flags(p, "train-landmarks", ("finetune_steps", "batch_size"))
    add_config_flags(p.add_mutually_exclusive_group(), "train-landmarks", ("max_steps", "epochs"))
    add_config_flags(p, "train-landmarks", ("decoder", "framing", "workers", "amp"),
                     {"decoder": DECODERS, "framing": FRAMINGS, "amp": AMPS})


def _add_train_lm(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-landmarks", help="stages 2-3: train interleaved transfer layers")
    p.add_argument("--autoencoder", required=True,
                   help="stage-1 model: 'default' (bundled), a .safetensors export or train-ae's last.pt")
    p.add_argument("--init-from", default="auto",
                   help="landmark model whose encoder and ITLs (and heatmap layer, for the same scheme) start "
                   "this run; 'auto': the bundled model when --autoencoder is default and there are at most "
                   "100 training images (few-shot transfer), else none; 'none': new ITLs on the frozen "
                   "autoencoder (the paper's way)")
    p.add_argument("--time-limit", type=float, metavar="MINUTES",
                   help="stop after this much wall-clock time (with --finetune-encoder, 30%% goes to the ITL stage)")
    _add_data_flags(p)
    p.add_argument("--out", required=True)
    p.add_argument("--config", help="YAML recipe")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    add_config_flags(p, "train-landmarks", ("train_count",))
    _add_lm_recipe(p)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--device", default="auto", choices=DEVICES)


def cmd_train_landmarks(a: argparse.Namespace) -> int:
    from fabrec.train_landmarks import train_landmarks

    cfg = _lm_config(a)
    r = train_landmarks(cfg, a.autoencoder, a.out, device=a.device, resume=a.resume,
                        progress=not a.no_progress, time_limit=a.time_limit, init_from=a.init_from)
    why = " (time limit reached)" if r.stopped == "time" else ""
    val = (f"best validation NME {r.best_nme:.2f}% ({r.val_count} images)" if r.val_count
           else "no validation images (best.pt is the last step)")
    _note(f"train-landmarks: {r.train_count} images, step {r.step}{why}, {val}, {r.seconds:.0f} s; "
          f"models {Path(a.out) / 'best.pt'}, {Path(a.out) / 'last.pt'}")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    from fabrec.evaluate import evaluate
    from fabrec.landmark_model import load_for_inference

    if not a.dataset or not a.root:
        raise FabrecError("eval: give --dataset and --root")
    if not Path(a.root).exists():
        raise FabrecError(f"--root {a.root}: no such folder")
    o = options_from_args(a)
    m = evaluate(load_for_inference(a.model, o), a.dataset, a.root, a.split or "test", a.out, a.scheme,
                 batch_size=o.batch_size, device=o.device, progress=not a.no_progress)
    rows = [("all", m)] + list(m.get("subsets", {}).items())
    print(f"{'subset':<14}{'count':>7}{'NME %':>9}{'FR@10 %':>10}{'AUC@10':>9}")
    for name, r in rows:
        print(f"{name:<14}{r['count']:>7}{r['nme']:>9.2f}{r['fr_10']:>10.2f}{r['auc_10']:>9.4f}")
    print(f"normaliser: {m['normaliser']}; results in {a.out}")
    return 0


def cmd_sweep(a: argparse.Namespace) -> int:
    from fabrec.sweep import sweep

    cfg = _lm_config(a)
    counts = tuple(c.strip() for c in a.counts.split(",") if c.strip())
    sweep(cfg, a.autoencoder, a.out, a.eval_dataset or cfg.dataset, a.eval_root or cfg.root, a.eval_split,
          counts, a.seeds, a.device, progress=not a.no_progress)
    print((Path(a.out) / "table.md").read_text())
    return 0


def check_predict(a: argparse.Namespace) -> tuple[list, dict | None, InferenceOptions]:
    """``predict``'s inputs and options, checked before anything heavy loads (a mistyped path
    fails at once): the input files of this shard (:func:`fabrec.inputs.expand_inputs`), the
    given boxes (or None) and the inference options."""
    from fabrec.inputs import expand_inputs, parse_shard, read_boxes_file, shard_of

    if a.refine < 0:
        raise FabrecError("--refine must be >= 0")
    options = options_from_args(a)
    boxes = read_boxes_file(a.boxes) if a.boxes else None
    files = expand_inputs(a.inputs)
    if a.shard:
        files = shard_of(files, *parse_shard(a.shard))
    return files, boxes, options


def cmd_predict(a: argparse.Namespace, checked: tuple[list, dict | None, InferenceOptions] | None = None) -> int:
    """``checked``: what :func:`check_predict` returned (checked again when not given)."""
    from tqdm import tqdm

    from fabrec.predict import LandmarkPredictor
    from fabrec.predict_io import predict_files
    from fabrec.smoothing import OneEuro

    files, boxes, options = check_predict(a) if checked is None else checked
    pred = LandmarkPredictor.from_pretrained(a.model, options)
    if boxes is None:
        pred.detector  # noqa: B018  (a missing optional detector fails here, before any work)
    print(f"predict: {pred.describe()}" + (f"; shard {a.shard}: {len(files)} input(s)" if a.shard else ""))
    smooth = OneEuro(min_cutoff=a.smooth_min_cutoff, beta=a.smooth_beta) if a.smooth else None
    c = predict_files(
        pred, files, a.out, a.format, boxes, a.refine, save_images=not a.no_images,
        save_reconstruction=a.save_reconstruction, skip_existing=a.skip_existing, smooth=smooth,
        progress=None if a.no_progress else (lambda it: tqdm(it, desc="predict", unit="file")),
        batch_size=options.batch_size,
    )
    causes = "".join(f"; {n} x {e}" for e, n in sorted(c["causes"].items(), key=lambda t: -t[1])[:5])
    parts = [f"{c['images']} image(s) with {c['faces']} face(s)"] if c["images"] or not c["videos"] else []
    if c["videos"]:
        parts.append(f"{c['videos']} video(s): {c['frames']} frame(s), {c['frames_with_face']} with a face")
    print(f"predict: {c['files']} input(s): " + ", ".join(parts) + f"; {c['no_face']} input(s) without a face, "
          f"{c['errors']} failed{causes}, {c['skipped']} already done; results in {a.out}")
    if c["files"] and c["errors"] == c["files"]:
        print("fabrec predict: error: every input failed", file=sys.stderr)
        return 1
    return 0


def cmd_prepare_faces(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fabrec.model_file import read_autoencoder
    from fabrec.inputs import parse_shard
    from fabrec.prepare_faces import PrepareConfig, list_photos, prepare_faces

    list_photos(a.src)  # the source is checked before the autoencoder loads
    mc = read_autoencoder(a.autoencoder).model
    cfg = PrepareConfig(size=a.size or mc.image_size, top=mc.crop_top, bottom=mc.crop_bottom, fmt=a.format,
                        quality=a.quality, min_score=a.min_score, min_face=a.min_face, rotations=parse_rotations(a.rotations),
                        face_filter=None if a.face_filter == "none" else a.face_filter)
    shard = parse_shard(a.shard) if a.shard else None
    bar = None if a.no_progress else (lambda it, n: tqdm(it, total=n, desc="prepare-faces", unit="photo"))
    s = prepare_faces(a.src, a.out, cfg, shard, bar)
    skipped = sum(s["faces_skipped"].values())
    print(f"prepare-faces: {s['photos']} photo(s), {s['faces_kept']} face(s) kept, {s['photos_without_a_face']} "
          f"without a face, {sum(s['photos_unreadable'].values())} unreadable, {skipped} face(s) skipped "
          f"({', '.join(f'{n} x {r}' for r, n in s['faces_skipped'].items()) or 'none'}); "
          f"{cfg.size} px {cfg.fmt} crops in {a.out}/faces, summary.json")
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    import os

    from fabrec.serve import check_bind, check_port, create_app

    token = a.token or os.environ.get("FABREC_TOKEN") or None
    check_bind(a.host, a.allow_remote, token)
    check_port(a.host, a.port)
    try:
        import uvicorn
    except ImportError:
        raise FabrecError("fabrec serve needs: pip install 'fabrec[serve]'") from None
    from fabrec.predict import LandmarkPredictor

    pred = LandmarkPredictor.from_pretrained(a.model, options_from_args(a))
    app = create_app(pred, max_bytes=int(a.max_upload_mb * 1e6), max_pixels=a.max_pixels, token=token,
                     workers=a.workers, projects=None if a.no_projects else a.projects)
    print(f"serve: {pred.describe()}; http://{a.host}:{a.port}/ (API v1: POST /v1/landmarks)"
          + ("" if a.no_projects else f"; label projects in {Path(a.projects).resolve()}"), flush=True)
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    import json

    from fabrec.bench import bench
    from fabrec.runtime import resolve_device, resolve_precision

    o = options_from_args(a)
    auto = "fp32" if a.backend != "torch" else resolve_precision("auto", resolve_device(o.device))
    dtype = auto if o.precision == "auto" else o.precision
    r = bench(a.model, a.backend, o.batch_size, a.reps, o.device, dtype, fold_bn=o.fold_batchnorm)
    if a.json:
        print(json.dumps(r))
    else:
        print(f"{r['model']} {r['backend']} {r['device']} {r['dtype']} batch {r['batch_size']}, {r['threads']} thread(s): "
              f"{r['faces_per_s']:.1f} faces/s, latency median {r['latency_ms_median']:.2f} ms, "
              f"p90 {r['latency_ms_p90']:.2f} ms; network {r['gflops_achieved']:.1f} GFLOP/s "
              f"({100 * r['ratio_to_ceiling']:.0f}% of a {r['gflops_ceiling']:.0f} GFLOP/s matmul); "
              f"decoding {r['decode_ms_per_face']:.2f} ms/face ({r['decoder_kernel']} kernel)")
        if r["fma_peak_gflops"]:
            print(f"  {r['fma_peak_kind']} peak {r['fma_peak_gflops']:.0f} GFLOP/s ({r['fma_peak_gflops_per_thread']:.0f} "
                  f"per thread): network at {100 * r['ratio_to_fma_peak']:.0f}%, end to end at "
                  f"{100 * r['end_to_end_ratio_to_fma_peak']:.0f}%; a plain 3x3-conv stack of the same FLOPs "
                  f"reaches {r['conv_stack_gflops']:.0f} GFLOP/s (network at {100 * r['ratio_to_conv_stack']:.0f}% of it)")
        elif r["fma_peak_note"]:
            print(f"  {r['fma_peak_note']}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from fabrec.export import export_onnx
    from fabrec.landmark_model import load_landmark_model
    from fabrec.model_file import export_weights, read_model_file

    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    if a.format == "safetensors":
        mf = read_model_file(a.model)
        digest = export_weights(mf, a.out)
        print(f"export: wrote {a.out} ({mf.kind} model, fp16 safetensors, sha256 {digest})")
        return 0
    model = load_landmark_model(a.model)
    export_onnx(model, a.out, reconstruction=a.with_reconstruction, opset=a.opset)
    print(f"export: wrote {a.out} (ONNX opset {a.opset}, dynamic batch)")
    return 0


OUT_FILES = ("generate", "interpolate", "export", "boxes")  # --out names a file; elsewhere a folder
# every command that computes takes --threads and --no-progress (boxes only converts text files)
COMPUTING = ("train-ae", "train-landmarks", "sweep", "eval", "predict", "bench", "prepare-faces", "generate",
             "interpolate", "serve", "export", "demo")


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="grid of random faces from z ~ N(0, I)")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=16)
    p.add_argument("--cols", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)


def _add_interpolate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("interpolate", help="row of faces between the encodings of two images")
    p.add_argument("--model", required=True)
    p.add_argument("--a", required=True, help="first face image (a face crop)")
    p.add_argument("--b", required=True, help="second face image")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--out", required=True)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="landmarks for images, folders and videos")
    p.add_argument("inputs", nargs="+", help="images, folders (recursive) or videos")
    p.add_argument("--model", default="default", help="'default', a .safetensors file or a training .pt")
    p.add_argument("--out", default="fabrec_out")
    p.add_argument("--format", choices=("json", "jsonl", "csv"), default="json")
    p.add_argument("--boxes", help="JSON {name: [[x,y,w,h],...]} or CSV path,x,y,w,h (skips the detector)")
    p.add_argument("--refine", type=int, default=0, help="re-crop from the predicted points N times (off by default: with the "
                   "bundled model it makes points worse, AFW 6.31 -> 7.08 %%, profiles most; README, Finding and framing faces)")
    p.add_argument("--save-reconstruction", action="store_true")
    p.add_argument("--no-images", action="store_true", help="write no annotated pictures")
    p.add_argument("--skip-existing", action="store_true", help="resume: skip inputs already written")
    p.add_argument("--shard", metavar="K/N",
                    help="process only shard K of N (a stable hash of each input's relative name): run "
                    "K = 1..N as separate processes or machines with the same --out (a Slurm array, "
                    "indexed jobs, xargs -P); each input falls in exactly one shard")
    p.add_argument("--smooth", action="store_true", help="One-Euro smoothing of video points")
    p.add_argument("--smooth-min-cutoff", type=float, default=1.0)
    p.add_argument("--smooth-beta", type=float, default=0.05)
    add_inference_flags(p, (*DETECTION, *NETWORK, "flip_from", "quality", "batch_size"))


def _add_prepare_faces(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare-faces", help="upright face crops from any folder of photos, for train-ae")
    p.add_argument("src", help="folder of photos (searched recursively)")
    p.add_argument("out", help="folder for faces/, manifest.jsonl and summary.json (created; resumable)")
    p.add_argument("--autoencoder", default="default",
                    help="whose framing (crop_top, crop_bottom) and input size the crops take")
    p.add_argument("--size", type=int, help="crop side in pixels (default: the autoencoder's input size)")
    p.add_argument("--format", choices=("webp", "jpg", "png"), default="webp", help="image format of the crops")
    p.add_argument("--quality", type=int, default=90, help="WebP / JPEG quality, 1-100")
    p.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE, help="YuNet: drop detections scoring below this")
    p.add_argument("--min-face", type=float, default=40.0,
                    help="skip faces smaller than this many pixels (mean box side): blurry once enlarged")
    p.add_argument("--rotations", default="0", help="YuNet: photo orientations searched, degrees, or 'all'")
    p.add_argument("--face-filter", default="default", metavar="MODEL|none",
                    help="the landmark model whose face filter drops detections that are not faces (prints, "
                    "patterns, hands), as predict does; none keeps every detection")
    p.add_argument("--shard", metavar="K/N",
                    help="only the photos of shard K of N (stable hash of the relative path); run K = 1..N "
                    "in parallel with the same OUT (each writes its own manifest)")


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="landmarks over HTTP (POST /v1/landmarks) and a browser page")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (this machine only by default)")
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    p.add_argument("--model", default="default", help="'default', a .safetensors file or a training .pt")
    p.add_argument("--token", help="clients must send 'Authorization: Bearer TOKEN' (or set FABREC_TOKEN)")
    p.add_argument("--allow-remote", action="store_true",
                    help="allow a --host other than this machine (needs --token)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body; larger: 413")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest photo in pixels; larger: 422")
    p.add_argument("--workers", type=int, default=2, help="requests computed at once (memory stays bounded)")
    p.add_argument("--projects", default="fabrec-projects",
                    help="folder of the page's label projects (photos, labelme labels, trained models)")
    p.add_argument("--no-projects", action="store_true",
                    help="landmarks only: no label projects, no training from the page")
    add_inference_flags(p, (*DETECTION, *NETWORK, "flip_from", "quality"))


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed of the landmark path")
    p.add_argument("--model", default="default", help="default, paper-256, a .safetensors or a .pt")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch")
    p.add_argument("--reps", type=int, default=20)
    add_inference_flags(p, ("precision", "fold_batchnorm", "device", "batch_size"),
                        {"precision": ("auto", "fp32", "bf16", "fp16")}, batch_size=1)
    p.add_argument("--json", action="store_true")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="ONNX (landmark path) or fp16 safetensors weights")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=("onnx", "safetensors"), default="onnx")
    p.add_argument("--with-reconstruction", action="store_true")
    p.add_argument("--opset", type=int, default=17)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="few-shot sweep over training-set sizes and seeds (paper Table 4)")
    p.add_argument("--autoencoder", required=True)
    _add_data_flags(p)
    p.add_argument("--out", required=True)
    p.add_argument("--config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--counts", default="100%,20%,10%,5%,50,10,1")
    p.add_argument("--seeds", type=int, default=3, help="seeds for counts of 50 images or fewer")
    _add_lm_recipe(p)
    p.add_argument("--eval-dataset", choices=DATASETS)
    p.add_argument("--eval-root")
    p.add_argument("--eval-split", default="test")
    p.add_argument("--device", default="auto", choices=DEVICES)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a landmark model on a dataset split")
    p.add_argument("--model", required=True)
    _add_data_flags(p)
    p.add_argument("--out", required=True)
    add_inference_flags(p, (*NETWORK, "batch_size"))


def _add_boxes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("boxes", help="write a box CSV from .pts landmark files (top/bottom margins)")
    p.add_argument("--pts", required=True, help="folder of images with same-stem .pts files")
    p.add_argument("--out", required=True)
    p.add_argument("--top", type=float, default=0.25)
    p.add_argument("--bottom", type=float, default=0.15)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on the bundled example photo")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--steps", type=int, default=40, help="steps of the tiny fallback training")
    p.add_argument("--train-tiny", action="store_true", help="run the tiny-autoencoder demo")


def _add_runtime_flags(sub: argparse._SubParsersAction) -> None:
    """``--threads`` and ``--no-progress`` on every command that computes (:data:`COMPUTING`)."""
    for name, sp in sub.choices.items():
        if name in COMPUTING:
            sp.add_argument("--threads", type=int, metavar="N",
                            help="CPU threads for PyTorch (default: one per core not kept busy by other processes)")
            sp.add_argument("--no-progress", action="store_true", help="no progress bars (logs and results only)")


def build_parser() -> argparse.ArgumentParser:
    """The ``fabrec`` command line: one sub-command per job, every option documented."""
    p = _Parser(prog="fabrec", description="3FabRec face alignment: train, evaluate and predict.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    for add in (_add_train_ae, _add_generate, _add_interpolate, _add_train_lm, _add_predict, _add_prepare_faces,
                _add_serve, _add_bench, _add_export, _add_sweep, _add_eval, _add_boxes, _add_demo, _add_runtime_flags):
        add(sub)
    document(p)
    return p


COMMANDS = {"prepare-faces": cmd_prepare_faces, "train-ae": cmd_train_ae, "generate": cmd_generate, "interpolate": cmd_interpolate, "demo": cmd_demo, "boxes": cmd_boxes,
            "train-landmarks": cmd_train_landmarks, "eval": cmd_eval, "sweep": cmd_sweep,
            "predict": cmd_predict, "bench": cmd_bench, "export": cmd_export, "serve": cmd_serve}


# Commands that end without leaving anything behind (no child processes, no open servers): the
# ``fabrec`` script leaves them with os._exit once their output is flushed, skipping the
# interpreter's teardown of PyTorch (0.7-0.9 s on a 2-core CPU: `import torch` then a normal
# exit takes 1.9 s, then os._exit 1.2 s).
FAST_EXIT = frozenset({"predict", "eval", "bench", "demo", "export", "boxes", "generate", "interpolate"})


class _ReaderMayLeave:
    """Standard output that goes quiet when its reader leaves (``fabrec predict photos/ | head``):
    the rest of the messages are dropped, the work and its files go on, no traceback."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guarded(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, method)(*args)
        except BrokenPipeError:  # the descriptor now leads nowhere: what is buffered and what follows is dropped
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)
            return None

    def write(self, text: str) -> int:
        self._guarded("write", text)
        return len(text)

    def flush(self) -> None:
        self._guarded("flush")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def run() -> None:
    """The ``fabrec`` script and ``python -m fabrec``: :func:`main` on the command line, then
    the exit (fast for :data:`FAST_EXIT` commands; ``main`` itself never exits, so tests and
    callers in-process are unaffected)."""
    args = build_parser().parse_args()
    sys.stdout = _ReaderMayLeave(sys.stdout)
    rc = dispatch(args)
    sys.stdout.flush()
    if args.cmd in FAST_EXIT:
        sys.stderr.flush()
        logging.shutdown()
        os._exit(rc)
    raise SystemExit(rc)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``fabrec`` command line in-process (``argv``: its words, default ``sys.argv[1:]``);
    returns the exit status."""
    return dispatch(build_parser().parse_args(argv))


def dispatch(args: argparse.Namespace) -> int:
    """Run parsed command-line ``args``: one clear line and a non-zero status for every
    :class:`~fabrec.errors.FabrecError`; returns the exit status."""
    _show_library_notes()
    try:
        if getattr(args, "out", None) is not None:  # every output-path mistake: one line, before any work
            from fabrec.outputs import check_out

            check_out(args.out, "file" if args.cmd in OUT_FILES else "folder")
        checked = args.cmd == "predict" and check_predict(args)  # before PyTorch loads
        if args.cmd in COMPUTING:
            from fabrec.runtime import default_threads, set_threads

            set_threads(args.threads if args.threads is not None else default_threads())
        return cmd_predict(args, checked) if checked else COMMANDS[args.cmd](args)
    except FabrecError as e:
        print(f"fabrec {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    except TrainingInterrupted as e:
        print(f"fabrec {args.cmd}: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"fabrec {args.cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    run()
