#!/usr/bin/env bash
# Everything the GPU path still needs a GPU for, in ONE command of at most 350 s: two tries fit
# in a 15-minute GPU rental with the machine's start (docs/gpu.md, "Renting a GPU for a few minutes").
#
#   bash scripts/gpu_session.sh [--dry-run] [DATA]
#
# DATA: the image folder or .zip for the training run. Without it: .gpu-data/ in the
# repository (copied in by the caller, kept out of git, carried to the GPU machine), else
# ../shared/data/pokesprite-gen8 beside the repository.
#
# Stages, always in this order, each under its own time limit (the limits add up to the
# session-wide deadline SESSION_LIMIT = 350 s, which caps them again). Each prints its result
# as it finishes (=== lines), so a session cut short still says what it found:
#   env             nvidia-smi; Python, NumPy, CuPy (with a kernel round trip), PyTorch, pytest.
#                   Always first: it tells the other stages whether there is a usable GPU.
#   warm            scripts/gpu_warm.py: every kind of step the later stages run, once, untimed, so
#                   that CuPy compiles its kernels (NVRTC; cached on disk) here and not inside a
#                   timed step or a test stage's limit. Prints what it took and the kernels compiled.
#   tests           pytest -m gpu tests/test_gpu.py, at most 3 failures: every layer, the loss and the
#                   steps of every recipe and option on the device against NumPy, the CUDA-graph
#                   capture of a step (no host sync), the kernels, checkpoints, train.run, sample.
#                   The example's end-to-end test is left out: the run stage is that, full size.
#   run             examples/pokemon.py --backend cupy: d2l's job (64x64, batch 256, 20 epochs),
#                   strict FP32: the README's pictures and wall time. Before the benchmarks, so that
#                   a session cut short still has them.
#   bench-256-fp32  benchmarks/train_step.py --backend cupy against PyTorch CUDA, batch 256, strict FP32
#   bench-256-tf32  the same in TF32 on both sides (--tf32)
#   bench-64-fp32   batch 64, strict FP32
#   profile         scripts/gpu_profile.py: per layer, and each CUDA kernel against the array code;
#                   its JSON is rewritten after every section
# Optional (not in the default STAGES; a second call): tests-all, every gpu-marked test.
#
# STAGES="..." runs a subset (env always comes first); "bench" means the three bench stages.
# --dry-run prints each selected stage, its limit and its command, the total and the files the
# session returns; it exits 1 if the total exceeds SESSION_LIMIT, and runs nothing.
#
# No install happens here (a GPU machine may have no network): a missing CuPy, GPU or pytest is
# reported and the stages that need it are skipped; without PyTorch the benchmarks time
# tinygan alone.
#
# Exit status: 0 every selected stage passed; 1 a stage failed or ran out of time;
#              2 no usable GPU (CuPy missing or no device): every GPU stage was skipped;
#              64 bad arguments or an unknown stage.
#
# Output goes to $OUT (the device tool's folder; default /tmp/tinygan-gpu-session), at most 8
# files (a rental returns no more):
#   session.log  bench.json  profile.json  run/samples_final.png  run/losses.png  run/log.jsonl  run/config.json
# bench.json holds each benchmark's JSON under its name ("256-fp32", ...), added as each finishes.
# The run's whole folder (checkpoint, every epoch's grid, progress.gif) stays in $WORK/run.
set -u -o pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/tinygan-gpu-session}
WORK=${WORK:-/tmp/tinygan-gpu-work}
SESSION_LIMIT=${SESSION_LIMIT:-350}
GRACE=6          # a stage gets SIGINT this long before its limit (the run checkpoints), then SIGKILL
RETURNED=(session.log bench.json profile.json run/samples_final.png run/losses.png run/log.jsonl run/config.json)

# ----- the stages: name, limit in seconds --------------------------------------------------
ORDER=(env warm tests run bench-256-fp32 bench-256-tf32 bench-64-fp32 profile tests-all)
declare -A LIMIT=([env]=20 [warm]=35 [tests]=85 [run]=70 [bench-256-fp32]=35 [bench-256-tf32]=30
                  [bench-64-fp32]=25 [profile]=50 [tests-all]=300)
DEFAULT_STAGES="env warm tests run bench profile"

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

# stage_cmd NAME: CMD (the command), TO (a file for its stdout, or empty)
stage_cmd() {
    TO=
    local bench=(benchmarks/train_step.py --backend cupy --warmup 5 --repeats 20 --settle 0.05 --no-memory --json)
    case $1 in
        env) CMD=("$PY" -c "$ENV_PY") ;;
        warm) CMD=("$PY" scripts/gpu_warm.py) ;;
        tests) CMD=("$PY" -m pytest -m gpu tests/test_gpu.py -k "not end_to_end_on_the_device" -q -rfEs
                    --maxfail=3 --durations=5 -p no:cacheprovider) ;;
        tests-all) CMD=("$PY" -m pytest -m gpu -q -rfEs --maxfail=10 --durations=8 -p no:cacheprovider) ;;
        run) CMD=("$PY" examples/pokemon.py --backend cupy --data "${DATA:-<no data>}" --out "$WORK/run" --no-progress) ;;
        bench-256-fp32) CMD=("$PY" "${bench[@]}" --batch-size 256) TO=$WORK/$1.json ;;
        bench-256-tf32) CMD=("$PY" "${bench[@]}" --batch-size 256 --tf32) TO=$WORK/$1.json ;;
        bench-64-fp32) CMD=("$PY" "${bench[@]}" --batch-size 64) TO=$WORK/$1.json ;;
        profile) CMD=("$PY" scripts/gpu_profile.py --batch-size 256 --repeats 20 --out "$OUT/profile.json") ;;
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
    echo "returns in \$OUT ($OUT), ${#RETURNED[@]} files at most: ${RETURNED[*]}"
    if [ "$total" -gt "$SESSION_LIMIT" ]; then
        echo "gpu_session.sh: the limits add up to $total s, more than the session's $SESSION_LIMIT s" >&2
        exit 1
    fi
    exit 0
fi

# ----- running ------------------------------------------------------------------------------
START=$(date +%s)
mkdir -p "$OUT" "$WORK"
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}     # tinygan from this checkout, no install needed
export PYTHONUNBUFFERED=1
LOG=$OUT/session.log
exec > >(tee -a "$LOG") 2>&1
echo "=== gpu session $(date -u '+%F %T') UTC: ${SELECTED[*]} (limits ${total} s of $SESSION_LIMIT)"
git -C "$ROOT" log -1 --oneline 2>/dev/null || true

failed=()
NO_GPU=
STARTED=

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
    STARTED=$name
    if [ -n "$TO" ]; then
        timeout -s INT -k "$GRACE" "$((limit - GRACE))" "${CMD[@]}" > "$TO"; rc=$?
    else                                 # (its output kept apart too, for the stage's result line)
        timeout -s INT -k "$GRACE" "$((limit - GRACE))" "${CMD[@]}" 2>&1 | tee "$WORK/$name.out"; rc=${PIPESTATUS[0]}
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

# ----- each stage's result, printed as it finishes -----------------------------------------
tests_result() {   # pytest's summary line, from what the stage printed
    local line
    line=$(grep -E '[0-9]+ (passed|failed|errors?|skipped)' "$WORK/$1.out" 2>/dev/null | tail -1)
    echo "=== $1: result: ${line:-no pytest summary (see above)}"
}

run_result() {   # copy what the README needs into $OUT/run, and say how the run went
    mkdir -p "$OUT/run"
    local last f
    last=$(ls "$WORK"/run/samples_epoch_*.png 2>/dev/null | sort | tail -1)
    [ -n "$last" ] && cp "$last" "$OUT/run/samples_final.png"
    for f in losses.png log.jsonl config.json; do
        [ -f "$WORK/run/$f" ] && cp "$WORK/run/$f" "$OUT/run/"
    done
    "$PY" - "$WORK/run/log.jsonl" "${last:-none}" <<'EOF' || true
import json, os, sys
path, last = sys.argv[1], sys.argv[2]
records = [json.loads(line) for line in open(path)] if os.path.isfile(path) else []
if not records:
    print("=== run: result: no epoch finished")
else:
    r, seconds = records[-1], sum(x["seconds"] for x in records)
    print(f"=== run: result: {len(records)} epochs in {seconds:.1f} s of training; last epoch loss_D {r['loss_D']:.3f}, "
          f"loss_G {r['loss_G']:.3f}, D(x) {r['D(x)']:.2f}, D(G(z)) {r['D(G(z))']:.2f}, {r['examples_per_sec']:,.1f} "
          f"examples/sec; final grid {os.path.basename(last)}")
EOF
}

bench_result() {   # add the benchmark's JSON to $OUT/bench.json; one line: examples/sec, PyTorch's, the targets
    "$PY" - "$WORK/$1.json" "$OUT/bench.json" "${1#bench-}" <<'EOF' || true
import json, os, sys
src, merged, key = sys.argv[1:]
r = json.load(open(src))
everything = json.load(open(merged)) if os.path.isfile(merged) else {}
everything[key] = r
with open(merged + ".part", "w") as f:
    json.dump(everything, f, indent=1)
os.replace(merged + ".part", merged)
eps, pt = r["tinygan_stats"]["examples_per_sec"], r.get("torch_stats", {}).get("examples_per_sec")
line = f"batch {r['batch_size']}, math: {r.get('math', '?')}: tinygan {eps:,.1f} examples/sec"
if pt:
    ratio = r["ratio_median"]
    line += f", PyTorch CUDA {pt:,.1f}, ratio {ratio:.2f}"
if r["batch_size"] == 256:
    line += f"  [>= 10,000 ex/s: {'MET' if eps >= 10000 else 'NOT MET'}"
    line += f"; >= 0.7 x PyTorch: {'MET' if ratio >= 0.7 else 'NOT MET'}]" if pt else "]"
print("=== " + key + ": result: " + line)
EOF
}

profile_result() {
    "$PY" - "$OUT/profile.json" <<'EOF' || true
import json, sys
r = json.load(open(sys.argv[1]))
layers = r.get("layers")
if isinstance(layers, list):
    slow = sorted(layers, key=lambda l: -(l["forward_ms"] + l["backward_ms"]))[:3]
    print(f"=== profile: result: {r['device']}, batch {r['batch_size']}: every layer once "
          f"{sum(l['forward_ms'] + l['backward_ms'] for l in layers):.2f} ms; slowest: "
          + "; ".join(f"{l['model']}.{l['index']} {l['forward_ms'] + l['backward_ms']:.2f} ms" for l in slow))
failed = [k for k in ("layers", "col2im", "adam", "bn_act") if isinstance(r.get(k), dict) and "error" in r[k]]
missing = [k for k in ("layers", "col2im", "adam", "bn_act") if k not in r]
print(f"=== profile: sections failed: {failed or 'none'}; not reached: {missing or 'none'}")
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
    warm)
        gpu_stage warm ;;
    tests|tests-all)
        if [ -z "$NO_GPU" ] && ! "$PY" -c "import pytest" 2>/dev/null; then
            echo; echo "=== $s: skipped: pytest is not installed (nothing is installed here)"
            failed+=("$s (no pytest)")
        else
            STARTED=
            gpu_stage "$s"
            [ "$STARTED" = "$s" ] && tests_result "$s"
        fi ;;
    run)
        if [ -z "$NO_GPU" ] && [ -z "$DATA" ]; then
            echo; echo "=== run: no data. Pass DATA, or copy a folder of images to .gpu-data/ and carry it (docs/gpu.md)"
            failed+=("run (no data)"); continue
        fi
        rm -rf "$WORK/run"
        gpu_stage run || [ -d "$WORK/run" ] || continue
        run_result ;;
    bench-*)
        rm -f "$WORK/$s.json"
        gpu_stage "$s"
        [ -s "$WORK/$s.json" ] && bench_result "$s" ;;
    profile)
        gpu_stage profile
        [ -s "$OUT/profile.json" ] && profile_result ;;
    esac
done

echo
echo "=== gpu session: $(( $(date +%s) - START )) s of $SESSION_LIMIT; in $OUT: $(cd "$OUT" && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ')"
if [ -n "$NO_GPU" ]; then
    echo "=== gpu session: no GPU: $NO_GPU; every GPU stage was skipped (this script installs nothing)"
    exit 2
elif [ ${#failed[@]} -eq 0 ]; then
    echo "=== gpu session: every stage passed (${SELECTED[*]})"
else
    printf '=== gpu session: FAILED: %s\n' "${failed[@]}"
    exit 1
fi
