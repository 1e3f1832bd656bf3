"""Average a landmark run's weights with the model it started from (a "model soup" of two):
every floating-point tensor of the run's networks (encoder, generator, ITLs, the autoencoder's
encoder) becomes ``w * run + (1 - w) * start``; everything else (config, scheme, mean shape)
is the run's. The result is a training checkpoint: fit the face filter, orientation rule and
head-pose correction for it afterwards (the model card's recipe).

    python benchmarks/average_weights.py --run runs/lm_mix2/last.pt --start default --weight 0.5 \\
        --out runs/soup50.pt
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fabrec.checkpoint import load_checkpoint, save_checkpoint
from fabrec.errors import FabrecError
from fabrec.weights import bundled, read_weights

log = logging.getLogger("average_weights")


def average(run: dict, start: dict, weight: float) -> int:
    """Average ``run["nets"]`` in place with ``start["nets"]`` (``weight`` on the run's);
    returns how many tensors were averaged. Nets or tensors the start lacks stay the run's."""
    n = 0
    for net, tensors in run["nets"].items():
        other = start["nets"].get(net, {})
        for k, v in tensors.items():
            d = other.get(k)
            if d is None or not v.is_floating_point():
                continue
            if d.shape != v.shape:
                raise FabrecError(f"{net}.{k}: shapes differ ({tuple(v.shape)} vs {tuple(d.shape)}): not the same network")
            tensors[k] = (weight * v.float() + (1 - weight) * d.float()).to(v.dtype)
            n += 1
    return n


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the run's checkpoint (.pt)")
    ap.add_argument("--start", default="default", help="the model it started from: a bundled name or a .safetensors")
    ap.add_argument("--weight", type=float, default=0.5, help="the run's share, 0..1")
    ap.add_argument("--out", required=True, help="the averaged checkpoint (.pt)")
    a = ap.parse_args()
    if not 0.0 <= a.weight <= 1.0:
        raise SystemExit(f"--weight {a.weight}: give a share between 0 and 1")
    start_path = Path(a.start) if Path(a.start).suffix else bundled(a.start)
    try:
        run, start = load_checkpoint(a.run), read_weights(start_path)
        n = average(run, start, a.weight)
    except FabrecError as e:
        print(f"average_weights: {e}", file=sys.stderr)
        return 1
    save_checkpoint(a.out, run)
    log.info("averaged %d tensors of %s (%.2f) with %s: %s", n, a.run, a.weight, start_path, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
