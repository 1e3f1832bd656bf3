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
    print("| model | backend | batch | faces/s (network + decode) | latency median ms | p90 ms | network alone faces/s | network GFLOP/s | % of matmul ceiling |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        g = f"{r['gflops_achieved']:.0f}" if "gflops_achieved" in r else "–"
        c = f"{100 * r['gflops_achieved'] / r['gflops_ceiling']:.0f}%" if "gflops_ceiling" in r else "–"
        nf = f"{r['network_faces_per_s']:.1f}" if "network_faces_per_s" in r else "–"
        print(f"| {r['model']} | {r['backend']} | {r['batch_size']} | {r['faces_per_s']:.1f} | "
              f"{r['latency_ms_median']:.2f} | {r['latency_ms_p90']:.2f} | {nf} | {g} | {c} |")


if __name__ == "__main__":
    {"afw": afw, "speed": speed}[sys.argv[1]]()
