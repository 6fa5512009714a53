"""Forward and backward time of every DCGAN layer, tinygan against PyTorch, at the real shapes.

    .venv/bin/python benchmarks/layers.py --batch-size 64 --threads 2 --repeats 7

Each layer of the paper's 64×64 G and D (latent 100, 64 features) gets the input it sees
in training (one forward pass of the whole network records them) and a random upstream
gradient of its output's shape. tinygan's layer and its PyTorch twin (same weights) are
timed alternately — tinygan forward, tinygan backward, PyTorch forward, PyTorch backward,
each framework's pair right after an untimed run of the same pair (so that neither is
charged for re-faulting memory the other just freed) — ``--repeats`` times; the table
shows medians in milliseconds and the ratio
PyTorch time / tinygan time (> 1: tinygan is faster). Backward computes the input
gradient and the parameter gradients in both. Adam's update of each network and the
loss are timed the same way. A slow layer is the row with the small ratio.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))      # tinygan from this checkout, installed or not
import threads as threadctl  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=64, help="32 with --features 32: the demo's networks")
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", default="", help="comma-separated substrings: time only matching rows")
    ap.add_argument("--json", action="store_true")
    return ap.parse_args(argv)


def _median_ms(times):
    return 1e3 * statistics.median(times)


def main(argv=None):
    args = parse_args(argv)
    threadctl.configure(args.threads)
    import numpy as np
    import torch

    import tinygan
    import torch_dcgan
    from tinygan.dcgan import RECIPES, build
    from tinygan.nn import BCEWithLogitsLoss, Conv2d, ConvTranspose2d
    from tinygan.optim import Adam
    from train_step import conv_macs
    torch.set_num_threads(args.threads)
    tinygan.use("numpy", np.float32)
    N = args.batch_size
    S, F = args.image_size, args.features
    G, D = build("paper", features=F, image_size=S, seed=0)
    Gt = torch_dcgan.from_tinygan(G, torch_dcgan.Generator(features=F, image_size=S, inplace=False))  # layers timed alone
    Dt = torch_dcgan.from_tinygan(D, torch_dcgan.Discriminator(features=F, image_size=S, inplace=False))
    rng = np.random.default_rng(0)
    flops = {id(layer): 2 * m for net, hw in ((G, (1, 1)), (D, (S, S))) for layer, m in conv_macs(net, N, hw)}

    # the input every layer sees: one pass through each network
    rows = []
    for net_name, net, net_t, x in (("G", G, Gt, rng.standard_normal((N, 100, 1, 1)).astype(np.float32)),
                                    ("D", D, Dt, rng.uniform(-1, 1, (N, 3, S, S)).astype(np.float32))):
        for i, (layer, layer_t) in enumerate(zip(net.main, net_t.main)):
            y = layer(x)
            rows.append((f"{net_name}.main.{i} {type(layer).__name__}", layer, layer_t, x, y.shape))
            x = y
    wanted = [w for w in args.only.split(",") if w]
    rows = [r for r in rows if not wanted or any(w in r[0] for w in wanted)]

    results = []
    for name, layer, layer_t, x, out_shape in rows:
        dout = rng.standard_normal(out_shape).astype(np.float32)
        # Each framework gets its own natural layout: tinygan the input exactly as the layer
        # saw it in the pass above and an upstream gradient stored the way tinygan's layers
        # return gradients (batch innermost, see tinygan/nn/im2col.py); PyTorch contiguous NCHW.
        x_t = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
        dout_t = torch.from_numpy(dout)
        if dout.ndim == 4:
            dout = np.ascontiguousarray(dout.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
        t = {"tg_fwd": [], "tg_bwd": [], "pt_fwd": [], "pt_bwd": []}
        def clear_torch_grads():
            x_t.grad = None
            for p in layer_t.parameters():
                p.grad = None
        for rep in range(args.repeats + 1):               # the first round is warm-up
            # Each framework runs its layer once untimed right before the timed call, so
            # that the memory the other one just used and freed is not charged to it.
            layer.backward(layer(x))
            s = time.perf_counter()
            layer(x)
            e = time.perf_counter()
            layer.backward(dout)
            f = time.perf_counter()
            layer_t(x_t).backward(dout_t)
            clear_torch_grads()
            g0 = time.perf_counter()
            y_t = layer_t(x_t)
            g = time.perf_counter()
            y_t.backward(dout_t)
            h = time.perf_counter()
            clear_torch_grads()
            if rep:
                t["tg_fwd"].append(e - s), t["tg_bwd"].append(f - e)
                t["pt_fwd"].append(g - g0), t["pt_bwd"].append(h - g)
        r = {"layer": name, "in": list(x.shape), "out": list(out_shape),
             **{k: _median_ms(v) for k, v in t.items()}}
        if isinstance(layer, (Conv2d, ConvTranspose2d)):
            r["gflop_fwd"] = flops[id(layer)] / 1e9
        results.append(r)

    # the loss (forward+backward together) and Adam, once per network
    extra = []
    logits = rng.standard_normal(N).astype(np.float32)
    ones = np.ones(N, np.float32)
    loss, loss_t = BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss()
    lg_t = torch.from_numpy(logits).requires_grad_(True)
    ones_t = torch.from_numpy(ones)

    def tg_loss():
        loss(logits, ones)
        loss.backward()

    def pt_loss():
        loss_t(lg_t, ones_t).backward()
        lg_t.grad = None
    extra.append(("BCEWithLogitsLoss fwd+bwd", tg_loss, pt_loss))
    r = RECIPES["paper"]
    for net_name, net, net_t in (("G", G, Gt), ("D", D, Dt)):
        opt = Adam(net.parameters(), lr=r["lr"], betas=(r["beta1"], 0.999))
        opt_t = torch.optim.Adam(net_t.parameters(), lr=r["lr"], betas=(r["beta1"], 0.999))
        for p, p_t in zip(net.parameters(), net_t.parameters()):
            p.grad[...] = rng.standard_normal(p.shape).astype(np.float32) * 1e-3
            p_t.grad = torch.from_numpy(p.grad.copy())
        n_params = sum(p.data.size for p in net.parameters())
        extra.append((f"Adam step, {net_name} ({n_params / 1e6:.1f}M params)", opt.step, opt_t.step))
    for name, f_tg, f_pt in extra:
        if wanted and not any(w in name for w in wanted):
            continue
        t_tg, t_pt = [], []
        for rep in range(args.repeats + 1):
            s = time.perf_counter()
            f_tg()
            e = time.perf_counter()
            f_pt()
            g = time.perf_counter()
            if rep:
                t_tg.append(e - s), t_pt.append(g - e)
        results.append({"layer": name, "tg_fwd": _median_ms(t_tg), "pt_fwd": _median_ms(t_pt),
                        "tg_bwd": 0.0, "pt_bwd": 0.0})

    if args.json:
        print(json.dumps({"batch_size": N, "image_size": S, "features": F, "threads": args.threads, "repeats": args.repeats,
                          "torch": torch.__version__, "numpy": np.__version__, "layers": results}, indent=1))
        return 0
    print(f"DCGAN {S}x{S} layers (features {F}) at batch {N}, {args.threads} thread(s): median ms over {args.repeats} "
          f"alternating repeats; ratio = PyTorch / tinygan (> 1: tinygan faster)\n")
    print(f"| {'layer':<34} | {'input → output':<30} | {'tinygan fwd':>11} | {'PyTorch fwd':>11} | "
          f"{'tinygan bwd':>11} | {'PyTorch bwd':>11} | {'ratio':>5} | {'tinygan GFLOP/s':>15} |")
    print(f"|{'-' * 36}|{'-' * 32}|{'-' * 12}:|{'-' * 12}:|{'-' * 12}:|{'-' * 12}:|{'-' * 6}:|{'-' * 16}:|")
    tot_tg = tot_pt = 0.0
    for r in results:
        shapes = f"{tuple(r['in'])} → {tuple(r['out'][1:])}" if "in" in r else ""
        tg, pt = r["tg_fwd"] + r["tg_bwd"], r["pt_fwd"] + r["pt_bwd"]
        tot_tg, tot_pt = tot_tg + tg, tot_pt + pt
        gf = f"{3 * r['gflop_fwd'] / (tg / 1e3):.0f}" if "gflop_fwd" in r else ""
        bwd = (f"{r['tg_bwd']:>11.2f} | {r['pt_bwd']:>11.2f}" if "in" in r else f"{'':>11} | {'':>11}")
        print(f"| {r['layer']:<34} | {shapes:<30} | {r['tg_fwd']:>11.2f} | {r['pt_fwd']:>11.2f} | {bwd} | "
              f"{pt / tg:>5.2f} | {gf:>15} |")
    print(f"| {'total':<34} | {'':<30} | {'':>11} | {'':>11} | {'':>11} | {'':>11} | {tot_pt / tot_tg:>5.2f} | "
          f"{'':>15} |")
    print(f"\ntinygan {tot_tg:.0f} ms, PyTorch {tot_pt:.0f} ms summed over the rows; numpy {np.__version__}, "
          f"torch {torch.__version__}; GFLOP/s counts forward + both gradients (3× the forward) per conv")
    print(threadctl.machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
