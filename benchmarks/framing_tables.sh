#!/usr/bin/env bash
# Every number of the README's "Finding and framing faces" section: `fabrec predict` on the
# shared AFW photos (upright, turned, with each detector) scored by benchmarks/predict_photos.py,
# and the detector / face-filter measurements of benchmarks/detectors.py. About 15 minutes on
# 2 cores. Results: benchmarks/results/framing/*.json
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
R=benchmarks/results/framing
W=runs/framing
mkdir -p "$R" "$W"
run() {  # name, predict_photos args...
  local name=$1; shift
  "$PY" benchmarks/predict_photos.py --out "$W/$name" "$@" | tail -1 > "$R/$name.json"
  cat "$R/$name.json"
}
run afw_yunet
run afw_yunet_refine1 --predict-args "--refine 1"
run afw_yunet_search --predict-args "--rotations all"
run afw_opencv --predict-args "--detector opencv"
run afw_opencv_refine1 --predict-args "--detector opencv --refine 1"
run afw_turned90_nosearch --rotate 90
for deg in 90 180 270; do
  run "afw_turned${deg}_search" --rotate "$deg" --predict-args "--rotations all" --reference "$W/afw_yunet_search"
done
for deg in 30 60; do
  run "afw_turned${deg}_search" --rotate "$deg" --predict-args "--rotations all"
  run "afw_turned${deg}_nosearch" --rotate "$deg"
done
"$PY" benchmarks/detectors.py --out "$R"
