#!/usr/bin/env bash
# The GPU check (issue #17): install PyAV and faiss from wheels carried with the tree where Python lacks
# them, then run benchmarks/gpu_check.py (its docstring lists the stages; each has its own time budget,
# all together under 7 min). Writes gpu_check.json, gpu_check.md and gpu_check.log to $OUT, or to
# benchmarks/gpu_check_out/ where $OUT is unset.
#
#   bash benchmarks/gpu_check.sh fetch-wheels [3.12]   # here, once: PyAV and faiss-cpu wheels into benchmarks/gpu_wheels/
#   bash benchmarks/gpu_check.sh                       # on the GPU machine (carry benchmarks/gpu_wheels)
#   bash benchmarks/gpu_check.sh --small               # anywhere, seconds; more options: gpu_check.py --help
#
# Without CUDA the CUDA stages are skipped; without a wheel that fits, the stages that need it are
# skipped, with the reason in the JSON and the table. Exit status: gpu_check.py's (1 if a stage failed).
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=${GPU_CHECK_WHEELS:-$ROOT/benchmarks/gpu_wheels}
PY=${PYTHON:-python3}

if [ "${1:-}" = fetch-wheels ]; then
    # The versions this machine's tests pass with; both are abi3 wheels, so one serves the Python named
    # (default 3.12, the GPU machine's) and every later one.
    pins=$("$PY" -c 'from importlib.metadata import version as v; print("av==" + v("av"), "faiss-cpu==" + v("faiss-cpu"))') || exit 1
    exec "$PY" -m pip download --no-deps --only-binary=:all: --python-version "${2:-3.12}" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$WHEELS" $pins
fi

OUTDIR=${OUT:-$ROOT/benchmarks/gpu_check_out}
SITE=${GPU_CHECK_SITE:-/tmp/avssl-gpu-site}  # outside the tree: nothing installed travels back or is committed
mkdir -p "$OUTDIR"
export PYTHONPATH="$ROOT/src:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
notes=""
for pair in av:av faiss:faiss-cpu; do
    mod=${pair%%:*} dist=${pair#*:}
    if "$PY" -c "import $mod" 2>/dev/null; then
        note="$mod present"
    elif ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        note="$mod missing, no wheels in ${WHEELS#$ROOT/}"
    # --no-deps: faiss's numpy is the machine's own; pip picks the wheel that fits this Python, if any
    elif "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
            --find-links "$WHEELS" "$dist" && "$PY" -c "import $mod"; then
        note="$mod installed from ${WHEELS#$ROOT/}"
    else
        note="$mod missing, no wheel in ${WHEELS#$ROOT/} fits $("$PY" -c 'import sys; print("Python %d.%d" % sys.version_info[:2])')"
    fi
    echo "[gpu_check.sh] $note"
    notes="${notes:+$notes; }$note"
done
export GPU_CHECK_INSTALL="$notes"
"$PY" "$ROOT/benchmarks/gpu_check.py" --out "$OUTDIR/gpu_check.json" --md "$OUTDIR/gpu_check.md" "$@" 2>&1 \
    | tee "$OUTDIR/gpu_check.log"
