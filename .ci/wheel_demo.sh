#!/usr/bin/env bash
# Build a wheel, install it into a fresh venv and run `fabrec demo` from outside the source tree:
# the default weights and the example photo must travel as package data.
set -euo pipefail
root=$(pwd)
work=$(mktemp -d)
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" . >/dev/null
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "torch==2.13.0" 2>&1 | grep -v WARNING || true
"$work/venv/bin/python" -m pip install -q "$work"/dist/fabrec-*.whl 2>&1 | grep -v WARNING || true
(cd "$work" && "$work/venv/bin/fabrec" demo --out "$work/demo")
test -s "$work/demo/astronaut.json" || test -s "$work/demo/demo_reconstruction.png"
echo "wheel demo: ok"
rm -rf "$work"
cd "$root"
