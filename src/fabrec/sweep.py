"""Few-shot sweep: train on N images / P% of a split over seeds, evaluate, tabulate (Table 4)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fabrec.config import LMTrainConfig
from fabrec.evaluate import evaluate
from fabrec.io import write_json_atomic, write_text_atomic
from fabrec.landmark_model import load_landmark_model
from fabrec.train_landmarks import parse_count, train_landmarks

log = logging.getLogger(__name__)

DEFAULT_COUNTS = ("100%", "20%", "10%", "5%", "50", "10", "1")


def sweep(
    cfg: LMTrainConfig,
    autoencoder: str | Path,
    out_dir: str | Path,
    eval_dataset: str,
    eval_root: str | Path,
    eval_split: str,
    counts: tuple[str, ...] = DEFAULT_COUNTS,
    seeds: int = 3,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate one model per (count, seed); ``seeds`` seeds for counts of at most 50
    images, one seed otherwise. Finished cells are read back, so an interrupted sweep resumes.
    Writes ``results.json`` and ``table.md`` into ``out_dir`` and returns the results."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for c in counts:
        n = parse_count(c)
        runs = seeds if isinstance(n, int) and n <= 50 else 1
        cells = []
        for s in range(runs):
            run = out / f"n{c.replace('%', 'pct')}_s{s}"
            done = run / "eval" / "metrics.json"
            if done.exists():
                cells.append(json.loads(done.read_text()))
                continue
            r = train_landmarks(replace(cfg, train_count=c, seed=cfg.seed + s), autoencoder, run,
                                device=device, resume=True, progress=progress)
            m = evaluate(load_landmark_model(run / "best.pt"), eval_dataset, eval_root, eval_split,
                         run / "eval", device=device, grid_count=0)
            m["train_seconds"] = r.seconds
            m["train_count"] = r.train_count
            write_json_atomic(done, m)
            cells.append(m)
            log.info("sweep: %s seed %d: NME %.2f%% (%d images, %.0f s)", c, s, m["nme"], r.train_count, r.seconds)
        results[c] = cells
    write_json_atomic(out / "results.json", results)
    write_text_atomic(out / "table.md", table(results))
    return results


def _fmt(vals: list[float], digits: int = 2) -> str:
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{np.mean(vals):.{digits}f} ± {np.std(vals):.{digits}f}"


def table(results: dict[str, Any]) -> str:
    """Markdown in the layout of the paper's Table 4 (sizes as columns), mean ± std over seeds."""
    cols = list(results)
    head = "| metric | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    rows = []
    first = results[cols[0]][0]
    subsets = ["all"] + sorted(first.get("subsets", {}))
    for sub in subsets:
        def get(m: dict, key: str, sub: str = sub) -> float:
            return m[key] if sub == "all" else m["subsets"][sub][key]

        label = "" if sub == "all" else f" ({sub})"
        rows.append(f"| NME %{label} | " + " | ".join(_fmt([get(m, 'nme') for m in results[c]]) for c in cols) + " |")
        rows.append(f"| FR@10 %{label} | " + " | ".join(_fmt([get(m, 'fr_10') for m in results[c]]) for c in cols) + " |")
        rows.append(f"| AUC@10{label} | " + " | ".join(_fmt([get(m, 'auc_10') for m in results[c]], 3) for c in cols) + " |")
    rows.append("| training images | " + " | ".join(str(results[c][0].get("train_count", "")) for c in cols) + " |")
    rows.append("| seeds | " + " | ".join(str(len(results[c])) for c in cols) + " |")
    rows.append("| train time s (median) | " + " | ".join(
        f"{np.median([m.get('train_seconds', np.nan) for m in results[c]]):.0f}" for c in cols) + " |")
    return head + "\n".join(rows) + f"\n\nNormaliser: {first['normaliser']}; evaluated on {first['dataset']}/{first['split']} ({first['count']} faces).\n"
