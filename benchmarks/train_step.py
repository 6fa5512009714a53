"""One DCGAN training step, tinygan against PyTorch, timed side by side in one process.

    .venv/bin/python benchmarks/train_step.py --batch-size 64 --threads 2 --repeats 7

The paper's 64×64 DCGAN (latent 100, 64 features) is built in tinygan and, when torch is
installed, the identical network in PyTorch with tinygan's weights copied in. The step
is tinygan.dcgan.train_step — one D update on a real and a fake batch, one G update,
Adam — and its line-for-line PyTorch twin (benchmarks/torch_dcgan.py).

How it measures:
  * both run in this process, after warm-up, interleaved A B A B … so that a burst of
    load from elsewhere on the machine hits both alike; the headline is the MEDIAN over
    pairs of (tinygan ex/s) / (PyTorch ex/s), with the spread of the pairs beside it;
  * the first warm-up step starts both from the same weights and data and prints both
    pairs of losses: they agree to float32 rounding, proving the networks are the same;
  * GFLOP/s counts the convolutions' multiply-adds (2 FLOP each) that the step needs —
    the same count for both frameworks (see ``step_flops``);
  * peak memory: each framework runs its steps alone in a child process that imports only
    that framework; the child reports its peak RSS (ru_maxrss) and the growth of that peak
    over its RSS just before the first step. (PyTorch's growth includes its gradients and
    Adam moments, 3 × 25 MB at 64 features, which it creates in step 1; tinygan creates
    them before. RSS between steps says little: freed memory stays with the allocator.)

Both ways on machines that set OpenBLAS's kernel. Where the environment sets
``OPENBLAS_CORETYPE`` or ``OPENBLAS_L2_SIZE`` (some machine kinds do), the numpy backend prints
two tables: the first with the variables as set, the second from the same command run again
in a child process with both removed from ITS environment only (OpenBLAS reads them when it
loads, so one process cannot measure both). The variables of this shell, of tests and of CI
are never changed. ``--as-set`` prints the first table alone.

--backend cupy times tinygan on the GPU with cupy.cuda.Event and PyTorch on 'cuda' with
torch.cuda.Event; without CuPy or a GPU it stops with the message of tinygan.backend.use.

The math, the same on both sides (and named in the table and the JSON): by default strict
FP32 — CuPy with CUPY_TF32=0 and torch.backends.cuda.matmul.allow_tf32 =
torch.backends.cudnn.allow_tf32 = False (PyTorch's own default leaves cuDNN's convolutions on
TF32, which would compare tensor-core math against plain FP32); with --tf32, TF32 tensor
cores on both — CUPY_TF32=1 (read by CuPy when it first picks a cuBLAS compute type, so
it is set before CuPy is imported) and both torch flags True.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))      # tinygan from this checkout, installed or not
import threads as threadctl  # noqa: E402  (stdlib-only module: safe before numpy)

STRICT_FP32, TF32 = "strict FP32", "TF32 on both"
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")   # set by some machine kinds; see the docstring


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP threads for numpy and torch")
    ap.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    ap.add_argument("--repeats", type=int, default=7, help="timed pairs (tinygan step, PyTorch step)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per framework first")
    ap.add_argument("--steps", type=int, default=1, help="training steps per timed sample")
    ap.add_argument("--settle", type=float, default=0.25, help="seconds of pause before each timed run")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--latent", type=int, default=100)
    ap.add_argument("--no-torch", action="store_true", help="time tinygan alone")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS child processes")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--tf32", action="store_true",
                    help="--backend cupy: TF32 tensor-core matmuls and convolutions on BOTH sides (CUPY_TF32=1; "
                         "torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32 True). "
                         "Default: strict FP32 on both (CUPY_TF32=0, both torch flags False)")
    ap.add_argument("--as-set", action="store_true",
                    help="where OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE is set: measure only with them as set "
                         "(default: a second table with both unset in a child process)")
    ap.add_argument("--memory-child", choices=("tinygan", "torch"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.tf32 and args.backend != "cupy":
        ap.error("--tf32 needs --backend cupy (NumPy and PyTorch on the CPU have no TF32)")
    return args


# ----- the math both sides use --------------------------------------------------------------

def choose_cupy_math(args):
    """Set CUPY_TF32 for this process and its children; call before CuPy is imported.

    CuPy reads the variable once, when it first chooses the compute type of a float32 matmul;
    setting it before the import makes sure nothing has chosen yet. The caller's own
    CUPY_TF32 is overridden, so the default is strict FP32 whatever the shell says.
    """
    if args.backend == "cupy":
        os.environ["CUPY_TF32"] = "1" if args.tf32 else "0"
    return TF32 if args.tf32 else STRICT_FP32


def choose_torch_math(torch, tf32):
    """PyTorch's two TF32 switches, both set: cuBLAS matmuls and cuDNN convolutions."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def math_settings(torch=None):
    """What each side was told, read back (for the JSON)."""
    out = {"CUPY_TF32": os.environ.get("CUPY_TF32")}
    if torch is not None:
        out.update({"torch.backends.cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                    "torch.backends.cudnn.allow_tf32": torch.backends.cudnn.allow_tf32})
    return out


# ----- what is measured ------------------------------------------------------------------

def conv_macs(model, N, in_hw):
    """[(layer, forward MACs)] for every conv of a tinygan Sequential model at batch N.

    Conv2d: N·OH·OW · O·C·K²;  ConvTranspose2d: N·H·W · C·O·K² (H, W its input size).
    Each weight gradient and each input gradient costs as many MACs as the forward.
    """
    from tinygan.nn import Conv2d, ConvTranspose2d, conv_out_size, deconv_out_size
    out, (H, W) = [], in_hw
    for layer in model.main:
        if isinstance(layer, Conv2d):
            k, s, p = layer.kernel_size, layer.stride, layer.padding
            H, W = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
            out.append((layer, N * H * W * layer.out_channels * layer.in_channels * k * k))
        elif isinstance(layer, ConvTranspose2d):
            k, s, p = layer.kernel_size, layer.stride, layer.padding
            out.append((layer, N * H * W * layer.out_channels * layer.in_channels * k * k))
            H, W = (deconv_out_size(H, k, s, p, layer.output_padding),
                    deconv_out_size(W, k, s, p, layer.output_padding))
    return out


def step_flops(G, D, N, image_size):
    """FLOPs (2 per multiply-add) of the convolutions in one train_step — what the step NEEDS.

    D runs forward 3 times (real, fake, fake again for G); its weight gradients twice (the
    D step's two halves); its input gradient in the D step for every layer but the first
    (the images need none) and in the G step for every layer. G runs forward once and
    backward once, without an input gradient for its first layer (z needs none).
    """
    d = [m for _, m in conv_macs(D, N, (image_size, image_size))]
    g = [m for _, m in conv_macs(G, N, (1, 1))]
    d_all, g_all = sum(d), sum(g)
    macs = 3 * d_all + 2 * d_all + 2 * (d_all - d[0]) + d_all + g_all + g_all + (g_all - g[0])
    return 2 * macs


# ----- the two frameworks ----------------------------------------------------------------

def tinygan_setup(args, backend_name):
    import numpy as np

    import tinygan
    from tinygan.dcgan import RECIPES, build
    from tinygan.optim import Adam
    tinygan.use(backend_name, np.float32)                 # raises a clear RuntimeError without a GPU
    G, D = build("paper", latent_dim=args.latent, features=args.features, image_size=args.image_size, seed=0)
    if backend_name == "cupy":
        G.to("cupy"), D.to("cupy")
    r = RECIPES["paper"]
    opt_G = Adam(G.parameters(), lr=r["lr"], betas=(r["beta1"], 0.999))
    opt_D = Adam(D.parameters(), lr=r["lr"], betas=(r["beta1"], 0.999))
    rng = np.random.default_rng(1)
    N = args.batch_size
    real = rng.uniform(-1, 1, (N, 3, args.image_size, args.image_size)).astype(np.float32)
    z = rng.standard_normal((N, args.latent, 1, 1)).astype(np.float32)
    return G, D, opt_G, opt_D, real, z


def make_tinygan_runner(G, D, opt_G, opt_D, real, z, backend_name):
    """A function running ``steps`` training steps and returning their wall time in seconds."""
    import tinygan
    from tinygan.dcgan import train_step
    xp = tinygan.backend.array_module(backend_name)
    real, z = xp.asarray(real), xp.asarray(z)
    if backend_name == "cupy":
        def run(steps):
            start, end = xp.cuda.Event(), xp.cuda.Event()
            start.record()
            for _ in range(steps):
                losses = train_step(G, D, opt_G, opt_D, real, z)
            end.record()
            end.synchronize()
            return xp.cuda.get_elapsed_time(start, end) / 1e3, losses
    else:
        def run(steps):
            t = time.perf_counter()
            for _ in range(steps):
                losses = train_step(G, D, opt_G, opt_D, real, z)
            return time.perf_counter() - t, losses
    return run


def make_torch_runner(G_tg, D_tg, real, z, args, device):
    import torch

    import torch_dcgan
    if device == "cuda":
        choose_torch_math(torch, args.tf32)
    G = torch_dcgan.from_tinygan(G_tg, torch_dcgan.Generator(args.latent, args.features, args.image_size), device)
    D = torch_dcgan.from_tinygan(D_tg, torch_dcgan.Discriminator(args.features, args.image_size), device)
    opt_G, opt_D = torch_dcgan.make_optimizers(G, D)
    real_t, z_t = torch.from_numpy(real).to(device), torch.from_numpy(z).to(device)
    if device == "cuda":
        def run(steps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(steps):
                losses = torch_dcgan.torch_train_step(G, D, opt_G, opt_D, real_t, z_t)
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3, losses
    else:
        def run(steps):
            t = time.perf_counter()
            for _ in range(steps):
                losses = torch_dcgan.torch_train_step(G, D, opt_G, opt_D, real_t, z_t)
            return time.perf_counter() - t, losses
    return run


# ----- peak memory, one framework per child process ---------------------------------------

def _status_mb(field):
    """VmRSS (now) or VmHWM (peak) of this process from /proc/self/status, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(args):
    """Run warm-up + timed steps of ONE framework and print its RSS figures as JSON."""
    import resource
    if args.memory_child == "tinygan":
        G, D, opt_G, opt_D, real, z = tinygan_setup(args, args.backend)
        run = make_tinygan_runner(G, D, opt_G, opt_D, real, z, args.backend)
    else:
        import numpy as np
        import torch

        import torch_dcgan
        torch.set_num_threads(args.threads)
        device = "cuda" if args.backend == "cupy" else "cpu"
        if device == "cuda":
            choose_torch_math(torch, args.tf32)
        G = torch_dcgan.Generator(args.latent, args.features, args.image_size).to(device)
        D = torch_dcgan.Discriminator(args.features, args.image_size).to(device)
        opt_G, opt_D = torch_dcgan.make_optimizers(G, D)
        rng = np.random.default_rng(1)
        real = torch.from_numpy(rng.uniform(-1, 1, (args.batch_size, 3, args.image_size, args.image_size))
                                .astype(np.float32)).to(device)
        z = torch.from_numpy(rng.standard_normal((args.batch_size, args.latent, 1, 1)).astype(np.float32)).to(device)

        def run(steps):
            for _ in range(steps):
                torch_dcgan.torch_train_step(G, D, opt_G, opt_D, real, z)
    before = _status_mb("VmRSS")
    run(args.warmup + 2)
    # ru_maxrss (KiB on Linux) is this child's peak RSS as long as the parent was smaller when
    # it forked: Linux carries a forked process's high-water mark across exec. The parent
    # therefore spawns these children before it builds anything, and VmHWM (the peak of
    # this process's own address space, fresh at exec) is reported beside it as a check.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"rss_before_steps_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
           "vmhwm_mb": round(_status_mb("VmHWM"), 1), "peak_growth_mb": round(peak - before, 1)}
    if args.backend == "cupy":                           # on the GPU, device memory is what counts
        if args.memory_child == "torch":
            out["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        else:
            import cupy
            out["gpu_peak_mb"] = round(cupy.get_default_memory_pool().total_bytes() / 2**20, 1)   # pool held
    print(json.dumps(out))


def measure_memory(args, framework):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", framework,
           "--batch-size", str(args.batch_size), "--threads", str(args.threads), "--backend", args.backend,
           "--image-size", str(args.image_size), "--features", str(args.features), "--latent", str(args.latent),
           "--warmup", "1"] + (["--tf32"] if args.tf32 else [])
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ----- main --------------------------------------------------------------------------------

def openblas_settings(environ=None):
    """{name: value} of the OpenBLAS kernel variables the environment sets ({} where neither is)."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in OPENBLAS_VARIABLES if k in environ}


def openblas_line(settings):
    """The tables' line naming the setting they were measured with."""
    if not settings:
        return f"OpenBLAS kernel variables: {' and '.join(OPENBLAS_VARIABLES)} unset"
    return "OpenBLAS kernel variables as set: " + ", ".join(f"{k}={v}" for k, v in settings.items())


def run_unset(argv, environ=None, run=subprocess.run):
    """This benchmark again, ``argv`` plus --as-set, in a child whose environment lacks the OpenBLAS
    kernel variables (this process's own are left as they are): (returncode, stdout, stderr)."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if k not in OPENBLAS_VARIABLES}
    done = run([sys.executable, os.path.abspath(__file__), *argv, "--as-set"], env=env, capture_output=True,
               text=True)
    return done.returncode, done.stdout, done.stderr


def main(argv=None, environ=None, run=subprocess.run):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    settings = openblas_settings(environ)
    math = choose_cupy_math(args)                        # before anything imports CuPy
    threadctl.configure(args.threads)                    # before numpy/torch load their BLAS
    if args.memory_child:
        return memory_child(args)

    import importlib.util

    import numpy as np

    import tinygan
    try:
        tinygan.backend.array_module(args.backend)      # --backend cupy without CuPy/GPU stops here
    except RuntimeError as e:
        print(f"train_step.py: {e}", file=sys.stderr)
        return 2
    have_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    if not args.no_torch and not have_torch:
        print("(torch is not installed: timing tinygan alone)", file=sys.stderr)

    memory = {}
    if not args.no_memory:                               # first, while this process is still small
        memory["tinygan"] = measure_memory(args, "tinygan")
        if have_torch:
            memory["torch"] = measure_memory(args, "torch")

    G, D, opt_G, opt_D, real, z = tinygan_setup(args, args.backend)
    if have_torch:
        import torch
        torch.set_num_threads(args.threads)
        if args.backend == "cupy" and not torch.cuda.is_available():     # a CPU-only build beside CuPy
            print(f"(torch {torch.__version__} has no CUDA here: timing tinygan alone)", file=sys.stderr)
            have_torch = False

    N = args.batch_size
    flops = step_flops(G, D, N, args.image_size)
    run_tg = make_tinygan_runner(G, D, opt_G, opt_D, real, z, args.backend)
    run_pt = make_torch_runner(G, D, real, z, args, "cuda" if args.backend == "cupy" else "cpu") \
        if have_torch else None

    # warm-up; the first step of each starts from the same weights and data
    check = {}
    for i in range(args.warmup):
        _, (ld, lg) = run_tg(1)
        if i == 0:
            check["tinygan"] = (float(ld), float(lg))
        if run_pt:
            _, (ld, lg) = run_pt(1)
            if i == 0:
                check["torch"] = (float(ld), float(lg))

    # A pause before each timed run lets the other library's idle threads stop spinning
    # (OpenBLAS workers busy-wait up to ~0.1 s after a GEMM) so neither is charged for them.
    pairs = []
    for _ in range(args.repeats):
        time.sleep(args.settle)
        t_tg, _ = run_tg(args.steps)
        time.sleep(args.settle)
        t_pt = run_pt(args.steps)[0] if run_pt else None
        pairs.append((t_tg, t_pt))

    def summary(times):
        eps = [N * args.steps / t for t in times]
        med_t = statistics.median(times) / args.steps
        return {"examples_per_sec": N / med_t, "step_ms": 1e3 * med_t,
                "examples_per_sec_min": min(eps), "examples_per_sec_max": max(eps),
                "gflops_per_sec": flops / med_t / 1e9}

    result = {
        "batch_size": N, "threads": args.threads, "blas_threads_in_effect": threadctl.blas_threads(),
        "backend": args.backend, "math": math, "repeats": args.repeats, "steps_per_sample": args.steps,
        "image_size": args.image_size, "features": args.features, "latent": args.latent,
        "gflop_per_step": flops / 1e9, "gflop_per_example": flops / N / 1e9,
        "numpy": np.__version__, "tinygan": tinygan.__version__,
        "tinygan_stats": summary([p[0] for p in pairs]),
        "first_step_losses": check,
    }
    if run_pt:
        ratios = [t_pt / t_tg for t_tg, t_pt in pairs]
        result.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                      torch_stats=summary([p[1] for p in pairs]),
                      ratio_median=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios),
                      ratios=ratios)
    if args.backend == "cupy":
        result["math_settings"] = math_settings(torch if run_pt else None)
    if memory:
        result["memory"] = memory
    try:
        result["load_average"] = os.getloadavg()
    except OSError:
        pass
    result["machine"] = threadctl.machine()
    if args.backend == "numpy":                      # this machine's product speed now, for comparing machines
        result["yardstick"] = threadctl.yardstick(torch if run_pt else None)

    result["openblas_env"] = settings
    both_ways = settings and not args.as_set and args.backend == "numpy"
    if not both_ways:
        print(json.dumps(result, indent=1) if args.json else format_table(result))
        return 0
    rc, out, err = run_unset(argv, environ, run)        # the second table: both variables unset
    if err.strip():
        print(err.rstrip(), file=sys.stderr)             # the child's own notes (no torch, …)
    if not rc and args.json:
        try:
            result["openblas_unset"] = json.loads(out)
        except ValueError:
            rc, err = 1, f"its output is not one JSON object: {out.strip()[:200]!r}"
    if rc:
        print(format_table(result) if not args.json else json.dumps(result, indent=1))
        print(f"train_step.py: the run with {' and '.join(OPENBLAS_VARIABLES)} unset failed (exit {rc}): "
              f"{err.strip().splitlines()[-1] if err.strip() else 'no message'}", file=sys.stderr)
        return rc
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"## With the OpenBLAS variables as set\n\n{format_table(result)}\n\n"
              f"## With {' and '.join(OPENBLAS_VARIABLES)} unset (in this benchmark's child process only)\n\n"
              f"{out.rstrip()}")
    return 0


def format_table(r):
    tg, pt = r["tinygan_stats"], r.get("torch_stats")
    mem = r.get("memory", {})
    name = "PyTorch " + r["torch"] if pt else None
    lines = [f"DCGAN {r['image_size']}x{r['image_size']} training step (D on real+fake, G, Adam), "
             f"batch {r['batch_size']}, {r['threads']} thread(s), backend {r['backend']}, math: {r['math']}; "
             f"{r['gflop_per_step']:.1f} GFLOP/step = {r['gflop_per_example']:.2f} GFLOP/example",
             "",
             f"| {'':<28} | {'tinygan':>10} |" + (f" {name:>18} |" if pt else ""),
             f"|{'-' * 30}|{'-' * 11}:|" + (f"{'-' * 19}:|" if pt else "")]

    def row(label, a, b=None, fmt="{:.1f}"):
        cells = f"| {label:<28} | {fmt.format(a) if a is not None else '—':>10} |"
        if pt:
            cells += f" {fmt.format(b) if b is not None else '—':>18} |"
        lines.append(cells)

    row("examples/sec (median)", tg["examples_per_sec"], pt and pt["examples_per_sec"])
    row("examples/sec (min – max)", f"{tg['examples_per_sec_min']:.1f}–{tg['examples_per_sec_max']:.1f}",
        pt and f"{pt['examples_per_sec_min']:.1f}–{pt['examples_per_sec_max']:.1f}", fmt="{}")
    row("step time, ms (median)", tg["step_ms"], pt and pt["step_ms"], fmt="{:.0f}")
    row("GFLOP/s", tg["gflops_per_sec"], pt and pt["gflops_per_sec"])

    def memv(fw, key):
        m = mem.get(fw)
        return m.get(key) if m else None
    if mem:
        row("peak RSS, MB", memv("tinygan", "peak_rss_mb"), memv("torch", "peak_rss_mb"), fmt="{:.0f}")
        row("peak RSS growth in steps, MB", memv("tinygan", "peak_growth_mb"), memv("torch", "peak_growth_mb"),
            fmt="{:.0f}")
        if memv("tinygan", "gpu_peak_mb") is not None:
            row("peak GPU memory, MB", memv("tinygan", "gpu_peak_mb"), memv("torch", "gpu_peak_mb"), fmt="{:.0f}")
    if pt:
        lines += ["", f"tinygan / PyTorch examples/sec: median {r['ratio_median']:.2f} over {r['repeats']} "
                      f"interleaved pairs (min {r['ratio_min']:.2f}, max {r['ratio_max']:.2f})"]
    c = r["first_step_losses"]
    if "torch" in c:
        lines.append(f"first step from identical weights: loss_D {c['tinygan'][0]:.6f} vs {c['torch'][0]:.6f}, "
                     f"loss_G {c['tinygan'][1]:.6f} vs {c['torch'][1]:.6f}")
    for fw, m in mem.items():
        if "error" in m:
            lines.append(f"memory child for {fw} failed: {m['error']}")
    lines.append(f"numpy {r['numpy']} (OpenBLAS threads in effect: {r['blas_threads_in_effect']})"
                 + (f", torch {r['torch']} ({r['torch_threads']} threads)" if pt else "")
                 + (f"; load average at the end {r['load_average'][0]:.2f}" if "load_average" in r else ""))
    if "openblas_env" in r:
        lines.append(openblas_line(r["openblas_env"]))
    if "machine" in r:
        lines.append(threadctl.machine_line(r["machine"]))
    if "yardstick" in r:
        steps = {"tinygan": tg["gflops_per_sec"], **({"torch": pt["gflops_per_sec"]} if pt else {})}
        lines.append(threadctl.yardstick_line(r["yardstick"], steps))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
