"""Print the README's Markdown tables from the JSON files the benchmarks wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

R = Path("benchmarks/results")


def afw() -> None:
    d = json.loads((R / "afw" / "afw_accuracy.json").read_text())
    print("| method (AFW, 337 faces) | NME % | FR@10 % | AUC@10 | ms / face |")
    print("|---|---|---|---|---|")
    for name, r in d["rows"].items():
        ms = r.get("ms_per_face_landmarks_only", r.get("ms_per_face_median", r.get("ms_per_face_incl_io")))
        ms_s = f"{ms:.1f}" if ms is not None else "–"
        extra = ""
        if r.get("detector_missed"):
            extra = f" ({r['count']} found, {r['detector_missed']} missed)"
        print(f"| {name}{extra} | {r['nme']:.2f} | {r['fr_10']:.2f} | {r['auc_10']:.3f} | {ms_s} |")


def speed() -> None:
    rows = json.loads((R / "landmarks_cpu.json").read_text())
    names = {"torch": "torch fp32 (default path)", "onnxruntime": "onnxruntime fp32", "torch-foldbn": "torch fp32 `--fold-bn`",
             "torch-bf16": "torch `--dtype bf16`", "torch-bf16-foldbn": "torch `--dtype bf16 --fold-bn`"}
    print("| model | path | batch | faces/s | latency median ms (min–max) | p90 ms | decoding ms/face "
          "| GFLOP/s end to end (share of the FMA peak) | same-FLOPs conv stack GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["backend"] == "dlib":
            print(f"| {r['model']} | dlib | 1 | {r['faces_per_s']:,.0f} | {r['latency_ms_median']:.2f} "
                  f"({r['latency_ms_min']:.2f}–{r['latency_ms_max']:.2f}) | {r['latency_ms_p90']:.2f} | – | – | – |")
            continue
        kind = "bf16" if r["dtype"] == "bf16" else "fp32"
        peak = (f"{r['gflops_end_to_end']:.0f} ({100 * r['end_to_end_ratio_to_fma_peak']:.0f}% of {kind} "
                f"{r['fma_peak_gflops']:.0f})" if r.get("fma_peak_gflops") else f"{r['gflops_end_to_end']:.0f}")
        print(f"| {r['model']} | {names.get(r.get('config'), r['backend'])} | {r['batch_size']} | {r['faces_per_s']:.1f} | "
              f"{r['latency_ms_median']:.2f} ({r['latency_ms_min']:.2f}–{r['latency_ms_max']:.2f}) | "
              f"{r['latency_ms_p90']:.2f} | {r['decode_ms_per_face']:.2f} | {peak} | {r['conv_stack_gflops']:.0f} |")


def profile() -> None:
    d = json.loads((R / "profile_layers.json").read_text())
    parts = [r["part"] for r in d["rows"] if r["backend"] == "torch" and r["batch"] == 1]
    get = {(r["backend"], r["batch"], r["part"]): r for r in d["rows"]}
    print("| part | torch b1 ms (share) | torch b32 ms (share) | torch b32 GFLOP/s | onnxruntime b1 ms | "
          "onnxruntime b32 ms | onnxruntime b32 GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for p in parts:
        cells = []
        for be, b in (("torch", 1), ("torch", 32)):
            r = get.get((be, b, p))
            if r is None:
                cells.append("–")
            elif "sum_of_parts_ms_per_face" in r:
                cells.append(f"{r['ms_per_face']:.2f} (parts {r['sum_of_parts_ms_per_face']:.2f})")
            else:
                cells.append(f"{r['ms_per_face']:.2f}" + (f" ({100 * r['share']:.0f}%)" if "share" in r else ""))
        r = get.get(("torch", 32, p))
        cells.append(f"{r['gflops']:.0f}" if r and r.get("gflops") else "–")
        for b in (1, 32):
            r = get.get(("onnxruntime", b, p))
            cells.append(f"{r['ms_per_face']:.2f}" if r else "–")
        r = get.get(("onnxruntime", 32, p))
        cells.append(f"{r['gflops']:.0f}" if r and r.get("gflops") else "–")
        print(f"| {p} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    {"afw": afw, "speed": speed, "profile": profile}[sys.argv[1]]()
