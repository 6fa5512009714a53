#!/usr/bin/env bash
# Everything the GPU path still needs a GPU for, in ONE command that fits one call of a
# 15-minute GPU rental: at most 540 s in all, whatever happens (docs/gpu.md).
#
#   bash scripts/gpu_session.sh [--dry-run] [DATA]
#
# DATA: the image folder or .zip for the full training run. Without it: .gpu-data/ in the
# repository (copied in by the caller, kept out of git, carried to the GPU machine), else
# ../shared/data/pokesprite-gen8 beside the repository.
#
# Stages, always in this order, each under its own time limit (the limits add up to <= 540 s,
# and a session-wide deadline of SESSION_LIMIT = 540 s caps them again):
#   env             nvidia-smi; Python, NumPy, CuPy (with a kernel round trip), PyTorch, pytest.
#                   Always runs first: it tells the other stages whether there is a usable GPU.
#   tests           pytest -m gpu tests/test_gpu.py, at most 3 failures: every layer, the loss and
#                   two train_steps on the device against NumPy, the CUDA-graph capture of a step
#                   (no host sync), the kernels, checkpoints across backends, train.run. The example's
#                   end-to-end test is left out: the run stage is that, full size.
#   run             examples/pokemon.py --backend cupy: the full job (64x64, batch 256, 20 epochs),
#                   strict FP32: the README's pictures and wall time. Before the benchmarks, so that
#                   a session cut short still has them.
#   bench-256-fp32  benchmarks/train_step.py --backend cupy against PyTorch CUDA, batch 256, strict FP32
#   bench-256-tf32  the same in TF32 on both sides (--tf32)
#   bench-64-fp32   batch 64, strict FP32
#   profile         scripts/gpu_profile.py: per layer, and each CUDA kernel against the array code
# Optional (not in the default STAGES; for a second call): tests-all, every gpu-marked test.
#
# STAGES="..." runs a subset (env always comes first); "bench" means the three bench stages.
# --dry-run prints each selected stage, its limit and its command, and the total; it exits 1
# if the total exceeds SESSION_LIMIT, and runs nothing.
#
# No install happens here (a GPU machine may have no network): a missing CuPy, GPU or pytest is
# reported and the stages that need it are skipped; without PyTorch the benchmarks time
# tinygan alone.
#
# Exit status: 0 every selected stage passed; 1 a stage failed or ran out of time;
#              2 no usable GPU (CuPy missing or no device): every GPU stage was skipped;
#              64 bad arguments or an unknown stage.
#
# Output goes to $OUT (the device tool's folder; default /tmp/tinygan-gpu-session):
#   session.log  bench-256-fp32.json  bench-256-tf32.json  bench-64-fp32.json  profile.json
#   gpu-run/{samples_final.png, losses.png, progress.gif, log.jsonl, config.json}
# The run's whole folder (checkpoint, every epoch's grid) stays in $RUN_DIR (/tmp/tinygan-gpu-run).
set -u -o pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/tinygan-gpu-session}
RUN_DIR=${RUN_DIR:-/tmp/tinygan-gpu-run}
SESSION_LIMIT=${SESSION_LIMIT:-540}
GRACE=8          # a stage gets SIGINT this long before its limit (the run checkpoints), then SIGKILL

# ----- the stages: name, limit in seconds --------------------------------------------------
ORDER=(env tests run bench-256-fp32 bench-256-tf32 bench-64-fp32 profile tests-all)
declare -A LIMIT=([env]=20 [tests]=120 [run]=150 [bench-256-fp32]=60 [bench-256-tf32]=60
                  [bench-64-fp32]=50 [profile]=60 [tests-all]=300)
DEFAULT_STAGES="env tests run bench profile"

DRY_RUN=0
DATA=
for arg in "$@"; do
    case $arg in
        --dry-run) DRY_RUN=1 ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "gpu_session.sh: unknown option $arg (see --help)" >&2; exit 64 ;;
        *) DATA=$arg ;;
    esac
done
if [ -z "$DATA" ]; then
    for d in "$ROOT/.gpu-data" "$ROOT/../shared/data/pokesprite-gen8"; do
        if [ -e "$d" ]; then DATA=$d; break; fi
    done
fi

# STAGES -> the selected stages, in ORDER, env first
wanted=" env "
for s in ${STAGES:-$DEFAULT_STAGES}; do
    case $s in
        bench) wanted+="bench-256-fp32 bench-256-tf32 bench-64-fp32 " ;;
        *) [ -n "${LIMIT[$s]+x}" ] || { echo "gpu_session.sh: unknown stage '$s' (stages: ${ORDER[*]}, bench)" >&2; exit 64; }
           wanted+="$s " ;;
    esac
done
SELECTED=()
for s in "${ORDER[@]}"; do case $wanted in *" $s "*) SELECTED+=("$s") ;; esac; done

# The probe the env stage runs: versions, and whether CuPy runs a kernel on a GPU. Exit 0 with
# "=== GPU: usable" or exit 2 with "=== no GPU: <why>", in seconds on a machine without one.
ENV_PY='
import importlib.util, os, platform, shutil, subprocess
import numpy
print("python", platform.python_version(), "numpy", numpy.__version__)
smi = shutil.which("nvidia-smi")
if smi is None:
    print("nvidia-smi: not found")
else:
    try:
        subprocess.run([smi], timeout=10)
    except subprocess.TimeoutExpired:
        print("nvidia-smi: no answer in 10 s")
import tinygan
from tinygan import backend
print("tinygan", tinygan.__version__)
for name, why in (("torch", "the bench stages time tinygan alone"), ("pytest", "the tests stages are skipped")):
    if importlib.util.find_spec(name) is None:
        print(f"{name}: not installed ({why}; nothing is installed here)")
    elif name == "torch":
        import torch
        cuda = torch.cuda.is_available()
        print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU available:", cuda,
              "" if cuda else "(the bench stages time tinygan alone)")
    else:
        import pytest
        print("pytest", pytest.__version__)
try:
    cupy = backend.array_module("cupy")          # import, and a kernel round trip on the device
except RuntimeError as e:
    print("=== no GPU:", e)
    with open(os.environ["TG_NO_GPU_FILE"], "w") as f:
        f.write(str(e))
    raise SystemExit(2)
rt = cupy.cuda.runtime
p = rt.getDeviceProperties(0)
name, major, minor, gib = p["name"].decode(), p["major"], p["minor"], p["totalGlobalMem"] / 2**30
print("cupy", cupy.__version__, "CUDA runtime", rt.runtimeGetVersion(), "driver", rt.driverGetVersion())
print(f"=== GPU: usable: {name}, compute capability {major}.{minor}, {gib:.0f} GiB")
'

# stage_cmd NAME: CMD (the command), TO (a file for its stdout, or empty), GPU (1 if it needs one)
stage_cmd() {
    TO= GPU=1
    local bench=(benchmarks/train_step.py --backend cupy --warmup 5 --repeats 20 --settle 0.05 --no-memory --json)
    case $1 in
        env) CMD=("$PY" -c "$ENV_PY") GPU=0 ;;
        tests) CMD=("$PY" -m pytest -m gpu tests/test_gpu.py -k "not end_to_end_on_the_device" -q -rfEs
                    --maxfail=3 --durations=8 -p no:cacheprovider) ;;
        tests-all) CMD=("$PY" -m pytest -m gpu -q -rfEs --maxfail=10 --durations=8 -p no:cacheprovider) ;;
        run) CMD=("$PY" examples/pokemon.py --backend cupy --data "${DATA:-<no data>}" --out "$RUN_DIR" --no-progress) ;;
        bench-256-fp32) CMD=("$PY" "${bench[@]}" --batch-size 256) TO=$OUT/$1.json ;;
        bench-256-tf32) CMD=("$PY" "${bench[@]}" --batch-size 256 --tf32) TO=$OUT/$1.json ;;
        bench-64-fp32) CMD=("$PY" "${bench[@]}" --batch-size 64) TO=$OUT/$1.json ;;
        profile) CMD=("$PY" scripts/gpu_profile.py --batch-size 256 --repeats 20 --json) TO=$OUT/$1.json ;;
    esac
}

show_cmd() {   # the command as one line (inline Python shown by name)
    local a line=
    for a in "${CMD[@]}"; do
        case $a in *$'\n'*) line+="<ENV_PY: versions and a GPU probe> " ;; *) line+="$(printf '%q' "$a") " ;; esac
    done
    printf '%s%s' "$line" "${TO:+> $TO}" | sed 's/ $//'
}

total=0
for s in "${SELECTED[@]}"; do total=$((total + LIMIT[$s])); done

if [ $DRY_RUN -eq 1 ]; then
    echo "gpu_session.sh --dry-run: ${#SELECTED[@]} stages in order, limits in seconds"
    for s in "${SELECTED[@]}"; do
        stage_cmd "$s"
        printf '  %-15s %4d  %s\n' "$s" "${LIMIT[$s]}" "$(show_cmd)"
    done
    printf '  %-15s %4d  (session limit %d s)\n' total "$total" "$SESSION_LIMIT"
    if [ "$total" -gt "$SESSION_LIMIT" ]; then
        echo "gpu_session.sh: the limits add up to $total s, more than the session's $SESSION_LIMIT s" >&2
        exit 1
    fi
    exit 0
fi

# ----- running ------------------------------------------------------------------------------
START=$(date +%s)
mkdir -p "$OUT"
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}     # tinygan from this checkout, no install needed
export PYTHONUNBUFFERED=1
LOG=$OUT/session.log
exec > >(tee -a "$LOG") 2>&1
echo "=== gpu session $(date -u '+%F %T') UTC: ${SELECTED[*]} (limits ${total} s of $SESSION_LIMIT)"
git -C "$ROOT" log -1 --oneline 2>/dev/null || true

failed=()
NO_GPU=

step() {   # step NAME: run the stage's command under its limit (and the session's); log wall time, exit code
           # (99: not started, the session's time is spent)
    local name=$1 limit=${LIMIT[$1]} left rc t0 why
    stage_cmd "$name"
    left=$((START + SESSION_LIMIT - $(date +%s) - 2))
    [ "$left" -lt "$limit" ] && limit=$left
    echo; echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s): $(show_cmd)"
    if [ "$limit" -lt 10 ]; then
        echo "=== $name: skipped, the session's $SESSION_LIMIT s are spent"
        return 99
    fi
    t0=$(date +%s.%N)
    if [ -n "$TO" ]; then
        timeout -s INT -k "$GRACE" "$((limit - GRACE))" "${CMD[@]}" > "$TO"; rc=$?
    else
        timeout -s INT -k "$GRACE" "$((limit - GRACE))" "${CMD[@]}"; rc=$?
    fi
    case $rc in 124|137) why=" (stopped at its time limit)" ;; *) why= ;; esac
    echo "=== $name: exit $rc after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s$why"
    return $rc
}

gpu_stage() {   # gpu_stage NAME: run it unless there is no GPU; record a failure
    if [ -n "$NO_GPU" ]; then
        echo; echo "=== $1: skipped: no GPU (see env)"; return 1
    fi
    local rc
    step "$1"; rc=$?
    case $rc in
        0) return 0 ;;
        99) failed+=("$1 (no time left)") ;;
        *) failed+=("$1 (exit $rc)") ;;
    esac
    return 1
}

bench_line() {   # one line per benchmark: examples/sec, PyTorch's, the ratio, the math, the targets
    "$PY" - "$1" <<'EOF' || true
import json, sys
r = json.load(open(sys.argv[1]))
eps, pt = r["tinygan_stats"]["examples_per_sec"], r.get("torch_stats", {}).get("examples_per_sec")
line = f"batch {r['batch_size']}, math: {r.get('math', '?')}: tinygan {eps:,.1f} examples/sec"
if pt:
    ratio = r["ratio_median"]
    line += f", PyTorch CUDA {pt:,.1f}, ratio {ratio:.2f}"
if r["batch_size"] == 256:
    line += f"  [>= 7,016.5 ex/s: {'MET' if eps >= 7016.5 else 'NOT MET'}"
    line += f"; >= 0.5 x PyTorch: {'MET' if ratio >= 0.5 else 'NOT MET'}]" if pt else "]"
print("=== " + line)
EOF
}

for s in "${SELECTED[@]}"; do
    case $s in
    env)
        export TG_NO_GPU_FILE; TG_NO_GPU_FILE=$(mktemp)
        step env; rc=$?
        if [ $rc -ne 0 ]; then           # (the probe says why; a crash or a timeout of it, too, means no GPU stage)
            NO_GPU=$(head -c 400 "$TG_NO_GPU_FILE")
            NO_GPU=${NO_GPU:-the GPU probe exited $rc}
        fi
        rm -f "$TG_NO_GPU_FILE" ;;
    tests|tests-all)
        if [ -z "$NO_GPU" ] && ! "$PY" -c "import pytest" 2>/dev/null; then
            echo; echo "=== $s: skipped: pytest is not installed (nothing is installed here)"
            failed+=("$s (no pytest)")
        else
            gpu_stage "$s"
        fi ;;
    run)
        if [ -z "$NO_GPU" ] && [ -z "$DATA" ]; then
            echo; echo "=== run: no data. Pass DATA, or copy a folder of images to .gpu-data/ and carry it (docs/gpu.md)"
            failed+=("run (no data)"); continue
        fi
        rm -rf "$RUN_DIR"
        gpu_stage run || [ -d "$RUN_DIR" ] || continue
        mkdir -p "$OUT/gpu-run"
        last=$(ls "$RUN_DIR"/samples_epoch_*.png 2>/dev/null | sort | tail -1)
        [ -n "$last" ] && cp "$last" "$OUT/gpu-run/samples_final.png" && echo "final grid: $(basename "$last")"
        for f in losses.png progress.gif log.jsonl config.json; do
            [ -f "$RUN_DIR/$f" ] && cp "$RUN_DIR/$f" "$OUT/gpu-run/"
        done
        [ -f "$RUN_DIR/log.jsonl" ] && cat "$RUN_DIR/log.jsonl" ;;
    bench-*)
        gpu_stage "$s"
        [ -s "$OUT/$s.json" ] && bench_line "$OUT/$s.json" ;;
    profile)
        gpu_stage profile
        [ -s "$OUT/profile.json" ] && "$PY" - "$OUT/profile.json" <<'EOF' || true
import json, sys
r = json.load(open(sys.argv[1]))
layers = sorted(r["layers"], key=lambda l: -(l["forward_ms"] + l["backward_ms"]))
print(f"=== profile, {r['device']}, batch {r['batch_size']}: every layer once "
      f"{sum(l['forward_ms'] + l['backward_ms'] for l in r['layers']):.2f} ms; the slowest:")
for l in layers[:5]:
    print(f"  {l['model']}.{l['index']} {l['layer'][:50]:<50} fwd {l['forward_ms']:.3f} bwd {l['backward_ms']:.3f}")
c = r["col2im"]
print(f"=== col2im, all {len(c)} of a step: array code {sum(x['array_code_ms'] for x in c):.3f} ms, gather kernel "
      f"{sum(x['gather_unpadded_ms'] for x in c):.3f} ms, results agree: {all(x['results_agree'] for x in c)}")
a = r["adam"]
print(f"=== Adam over G: array code {a['array_code_ms']:.3f} ms, fused kernel {a['fused_kernel_ms']:.3f} ms")
b = r["bn_act"]
print(f"=== BatchNorm+LeakyReLU, D: array code {sum(x['array_code_ms'] for x in b):.3f} ms, "
      f"statistics + kernel {sum(x['stats_plus_kernel_ms'] for x in b):.3f} ms")
EOF
        ;;
    esac
done

echo
echo "=== gpu session: $(( $(date +%s) - START )) s of $SESSION_LIMIT"
if [ -n "$NO_GPU" ]; then
    echo "=== gpu session: no GPU: $NO_GPU; every GPU stage was skipped (this script installs nothing)"
    exit 2
elif [ ${#failed[@]} -eq 0 ]; then
    echo "=== gpu session: every stage passed (${SELECTED[*]})"
else
    printf '=== gpu session: FAILED: %s\n' "${failed[@]}"
    exit 1
fi
