#!/usr/bin/env bash
# The GPU recipe that trains the bundled default model (tools/gpu/README.md says when and how).
#
#   tools/gpu/default_model.sh pack                 # shared data -> gpu_pack/ (~46 MB, git-ignored)
#   GPU call 1 (carry gpu_pack):  python3 tools/gpu/run_recipe.py smoke --pack gpu_pack --out "$OUT"
#   GPU call 2 (carry gpu_pack):  python3 tools/gpu/run_recipe.py real  --pack gpu_pack --out "$OUT"
#   tools/gpu/default_model.sh install RETURNED_DIR # AFW evaluation; installs the model if better
#
#   tools/gpu/default_model.sh --dry-run OUT        # the whole flow on this CPU, tiny, in seconds,
#                                                   # writing the same files into OUT
# Data: FABREC_SHARED (default ../shared/data beside the repository): utkface/ and 300w/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$( [ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || echo python3)}"
shared="${FABREC_SHARED:-$root/../shared/data}"

case "${1:-}" in
  pack)  # FABREC_FACES="celeba=runs/faces/celeba lfw=runs/faces/lfw": prepare-faces output to pack too
    faces=()
    for f in ${FABREC_FACES:-}; do faces+=(--faces "$f"); done
    "$py" "$here/pack.py" --shared "$shared" --out "${2:-$root/gpu_pack}" "${faces[@]}" ;;
  install)
    [ -n "${2:-}" ] || { echo "usage: $0 install RETURNED_DIR" >&2; exit 2; }
    "$py" "$here/install_default.py" --from "$2" --afw "$shared/300w" "${@:3}" ;;
  --dry-run)
    [ -n "${2:-}" ] || { echo "usage: $0 --dry-run OUT" >&2; exit 2; }
    out="$2"
    mkdir -p "$out/afw_subset/afw"
    "$py" "$here/pack.py" --shared "$shared" --out "$out/pack" --limit 24
    (cd "$root" && "$py" "$here/run_recipe.py" dry --pack "$out/pack" --out "$out/returned" --work "$out/work")
    for pts in $(ls "$shared/300w/afw/"*.pts | head -n 6); do
      for img in "${pts%.pts}".jpg "${pts%.pts}".png; do [ -f "$img" ] && cp "$img" "$out/afw_subset/afw/"; done; cp "$pts" "$out/afw_subset/afw/"
    done
    "$py" "$here/install_default.py" --from "$out/returned" --afw "$out/afw_subset" \
        --dest "$out/pretrained" --work "$out/install" ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
