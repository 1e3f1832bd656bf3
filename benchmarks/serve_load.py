"""Load on `fabrec serve`: N requests, C at a time, with a real photo; errors, latency, memory.

    python benchmarks/serve_load.py --requests 200 --concurrency 8 [--json FILE]

Starts `fabrec serve` on a free local port in its own process, waits for /health, posts the
bundled photo to /v1/landmarks from C client threads, and reads the server's resident memory
(VmRSS) before and after. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from fabrec.sample_photo import SAMPLE_IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "fabrec", "serve", "--port", str(port), "--device", "cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        data = SAMPLE_IMAGE.read_bytes()
        with httpx.Client(timeout=120) as c:  # one warm-up request
            c.post(f"{url}/v1/landmarks", files={"image": ("a.jpg", data, "image/jpeg")})
        before = rss_mb(server.pid)

        def one(_: int) -> tuple[int, float]:
            t = time.perf_counter()
            with httpx.Client(timeout=120) as c:
                r = c.post(f"{url}/v1/landmarks", files={"image": ("a.jpg", data, "image/jpeg")})
            ok = r.status_code == 200 and len(r.json()["faces"]) == 1
            return int(not ok), 1000 * (time.perf_counter() - t)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(a.concurrency) as pool:
            res = list(pool.map(one, range(a.requests)))
        wall = time.perf_counter() - t0
        lat = np.array([r[1] for r in res])
        out = {"requests": a.requests, "concurrency": a.concurrency, "errors": int(sum(r[0] for r in res)),
               "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
               "latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
               "requests_per_s": round(a.requests / wall, 2), "rss_mb_before": round(before, 1),
               "rss_mb_after": round(rss_mb(server.pid), 1), "photo": SAMPLE_IMAGE.name}
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(out))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
