#!/usr/bin/env bash
# Everything issue 5 ("the GPU path") still needs a GPU for, in one command. See docs/gpu.md.
#
#   bash scripts/gpu_session.sh [DATA]
#
# DATA: the image folder or .zip for the full training run. Without it: .gpu-data/ in the
# repository (a folder the caller copies in and carries to the GPU machine), else
# ../shared/data/pokesprite-gen8 beside the repository.
#
# Stages, in order (STAGES="..." runs a subset, e.g. STAGES="tests" then STAGES="bench profile run"):
#   env      nvidia-smi, Python, NumPy, CuPy, PyTorch versions
#   tests    pytest -m gpu: every gpu-marked test (CuPy against NumPy, kernels against twins, ...)
#   bench    benchmarks/train_step.py --backend cupy against PyTorch CUDA, batch 64 and 256
#            (the CUDA kernels in tinygan/cuda are timed by the profile stage, not wired in)
#   profile  scripts/gpu_profile.py: per layer, and each CUDA kernel against the array code
#   run      examples/pokemon.py --backend cupy: the full job (64x64, batch 256, 20 epochs), timed
#
# Output goes to $OUT (the device tool's folder; default /tmp/tinygan-gpu-session), at most 8 files:
#   session.log  bench-64.json  bench-256.json  bench-256-kernels.json  profile.json
#   gpu-run/samples_final.png  gpu-run/losses.png  gpu-run/log.jsonl
# The run's whole folder (checkpoint, every epoch's grid) stays in $RUN_DIR (/tmp/tinygan-gpu-run).
set -u -o pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/tinygan-gpu-session}
RUN_DIR=${RUN_DIR:-/tmp/tinygan-gpu-run}
STAGES=${STAGES:-env tests bench profile run}
mkdir -p "$OUT"
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}     # tinygan from this checkout, no install needed
export PYTHONUNBUFFERED=1
LOG=$OUT/session.log
exec > >(tee -a "$LOG") 2>&1

DATA=${1:-}
if [ -z "$DATA" ]; then
    for d in "$ROOT/.gpu-data" "$ROOT/../shared/data/pokesprite-gen8"; do
        if [ -e "$d" ]; then DATA=$d; break; fi
    done
fi

failed=()
stage() { case " $STAGES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
step() {   # step NAME SECONDS COMMAND...: run with a time limit, log the wall time and the exit code
    local name=$1 limit=$2; shift 2
    echo >&2; echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*" >&2
    local t0 rc; t0=$(date +%s.%N)
    timeout "$limit" "$@"; rc=$?
    echo "=== $name: exit $rc after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s" >&2
    [ $rc -eq 0 ] || failed+=("$name (exit $rc)")
    return $rc
}

if stage env; then
    echo "=== env"
    nvidia-smi || failed+=("nvidia-smi")
    "$PY" - <<'EOF' || failed+=("versions")
import platform, numpy
print("python", platform.python_version(), "numpy", numpy.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "device", cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
except Exception as e:
    print("cupy: NOT USABLE:", type(e).__name__, e)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
except Exception as e:
    print("torch: NOT USABLE:", type(e).__name__, e)
import tinygan
print("tinygan", tinygan.__version__, "cupy backend usable:", tinygan.backend.cupy_available())
EOF
    git -C "$ROOT" log -1 --oneline 2>/dev/null || true
fi

if stage tests; then
    step "pytest -m gpu" 240 "$PY" -m pytest -m gpu -q -p no:cacheprovider -rs
fi

if stage bench; then
    for b in 64 256; do
        step "benchmark batch $b" 90 "$PY" benchmarks/train_step.py --backend cupy --batch-size "$b" \
            --warmup 5 --repeats 20 --no-memory --json > "$OUT/bench-$b.json"
        cat "$OUT/bench-$b.json"
        "$PY" - "$OUT/bench-$b.json" <<'EOF' || true
import json, sys
r = json.load(open(sys.argv[1]))
eps, ratio = r["tinygan_stats"]["examples_per_sec"], r.get("ratio_median", float("nan"))
line = f"batch {r['batch_size']}: tinygan {eps:,.1f} examples/sec, {ratio:.2f} x PyTorch eager CUDA"
if r["batch_size"] == 256:
    line += (f"  [targets: >= 7,016.5 ex/s {'MET' if eps >= 7016.5 else 'NOT MET'}, "
             f">= 0.5 x PyTorch {'MET' if ratio >= 0.5 else 'NOT MET'}]")
print("=== " + line)
EOF
    done
    echo "=== (the CUDA kernels in tinygan/cuda are not wired into the layers: scripts/gpu_profile.py times them)"
fi

if stage profile; then
    step "profile batch 256" 90 "$PY" scripts/gpu_profile.py --batch-size 256 --json > "$OUT/profile.json"
    "$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps({k: r[k] for k in ('col2im','adam','bn_act')}, indent=1))" \
        "$OUT/profile.json" 2>/dev/null || true
fi

if stage run; then
    if [ -z "$DATA" ]; then
        echo "=== run: no data. Pass DATA, or copy a folder of images to .gpu-data/ and carry it (docs/gpu.md)"
        failed+=("run (no data)")
    else
        rm -rf "$RUN_DIR"
        step "full run: examples/pokemon.py --backend cupy --data $DATA" 330 \
            "$PY" examples/pokemon.py --backend cupy --data "$DATA" --out "$RUN_DIR" --no-progress
        mkdir -p "$OUT/gpu-run"
        last=$(ls "$RUN_DIR"/samples_epoch_*.png 2>/dev/null | sort | tail -1)
        [ -n "$last" ] && cp "$last" "$OUT/gpu-run/samples_final.png" && echo "final grid: $(basename "$last")"
        for f in losses.png log.jsonl; do [ -f "$RUN_DIR/$f" ] && cp "$RUN_DIR/$f" "$OUT/gpu-run/"; done
        [ -f "$RUN_DIR/log.jsonl" ] && cat "$RUN_DIR/log.jsonl"
        [ -f "$RUN_DIR/config.json" ] && grep -E '"(images|image_size|batch_size|epochs|data)"' "$RUN_DIR/config.json"
    fi
fi

echo
if [ ${#failed[@]} -eq 0 ]; then
    echo "=== gpu session: every stage passed ($STAGES)"
else
    printf '=== gpu session: FAILED: %s\n' "${failed[@]}"
    exit 1
fi
