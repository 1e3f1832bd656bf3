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
# the bundled YuNet detector travels in the wheel with its licence and the notice
photo=$("$work/venv/bin/python" -c 'from fabrec.sample_photo import SAMPLE_IMAGE; print(SAMPLE_IMAGE)')
(cd "$work" && "$work/venv/bin/fabrec" predict "$photo" --out "$work/pred" --no-progress --no-images)
"$work/venv/bin/python" -c 'import json, sys; f = json.load(open(sys.argv[1]))["faces"]; assert len(f) == 1 and f[0]["score"] > 0.5, f' "$work/pred/astronaut.json"
"$work/venv/bin/python" -c 'import zipfile, sys; n = zipfile.ZipFile(sys.argv[1]).namelist(); assert any(x.endswith("assets/yunet/LICENSE") for x in n) and any(x.endswith("/NOTICE") for x in n) and any(x.endswith(".onnx") for x in n), n' "$work"/dist/fabrec-*.whl
echo "wheel demo: ok"
rm -rf "$work"
cd "$root"
