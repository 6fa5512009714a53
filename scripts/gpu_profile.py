#!/usr/bin/env python
"""Where a DCGAN training step spends its GPU time, and what each CUDA kernel would save.

    python scripts/gpu_profile.py --batch-size 256                     # a table
    python scripts/gpu_profile.py --batch-size 256 --json              # one JSON object
    python scripts/gpu_profile.py --batch-size 256 --out profile.json  # written after every section

Needs CuPy and a GPU. Every time is the median of --repeats runs after warm-up, measured
with CUDA events around the work (so it is GPU time plus whatever the host adds by
launching kernels late — the launch overhead is part of what a fused kernel saves).

  layers   each layer of the paper's 64×64 G and D (F = 64), forward and backward;
  col2im   at every col2im a step does (G's transposed convolutions forward, D's convolutions'
           input gradient): the layers' array code (col2im_chwn on a padded canvas, then the
           border cut away) against tinygan.cuda.kernels' gathering kernel, as a drop-in
           for col2im_chwn and writing the unpadded (C, H, W, N) result directly;
  adam     Adam over all of G's parameters: tinygan.optim.Adam.step against one fused
           adam_update kernel per parameter;
  bn_act   BatchNorm2d + LeakyReLU(0.2) forward at D's BatchNorm shapes against the batch
           statistics plus one batchnorm_act kernel.

This is the profile that decides which kernels to wire in (docs/gpu.md): a kernel is worth
its code only where its row shows the array code is a real share of the step.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402


def gpu_ms(cupy, fn, repeats, warmup=3):
    """Median milliseconds of ``fn()`` between two CUDA events."""
    for _ in range(warmup):
        fn()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end))
    return round(statistics.median(times), 4)


def profile_layers(cupy, G, D, N, latent, repeats):
    """[(model, index, layer, forward ms, backward ms)] for one pass through G then D."""
    rows = []
    for who, model, x in (("G", G, cupy.random.standard_normal((N, latent, 1, 1), dtype=np.float32)),
                          ("D", D, None)):
        if x is None:
            x = cupy.tanh(cupy.random.standard_normal((N, 3, G.image_size, G.image_size), dtype=np.float32))
        for i, layer in enumerate(model.main):
            y = layer(x)
            dout = cupy.random.standard_normal(y.shape, dtype=np.float32)
            fwd = gpu_ms(cupy, lambda: layer(x), repeats)
            layer(x)                                            # the cache backward needs
            bwd = gpu_ms(cupy, lambda: layer.backward(dout), repeats)
            rows.append({"model": who, "index": i, "layer": repr(layer).split("\n")[0],
                         "forward_ms": fwd, "backward_ms": bwd})
            x = y
    return rows


def col2im_shapes(G, D, N):
    """(where, C, H, W, k, s, p, OH, OW) for each col2im of a step: the image written is (N, C, H, W)."""
    from tinygan.nn import Conv2d, ConvTranspose2d
    from tinygan.nn.im2col import conv_out_size, deconv_out_size
    shapes, hw = [], 1
    for layer in G.main:
        if isinstance(layer, ConvTranspose2d):
            k, s, p = layer.kernel_size, layer.stride, layer.padding
            out = deconv_out_size(hw, k, s, p, layer.output_padding)
            shapes.append(("G forward " + repr(layer), layer.out_channels, out, out, k, s, p, hw, hw))
            hw = out
    hw = G.image_size
    for layer in D.main:
        if isinstance(layer, Conv2d):
            k, s, p = layer.kernel_size, layer.stride, layer.padding
            out = conv_out_size(hw, k, s, p)
            if layer is not D.main[0]:                           # the first layer needs no input gradient
                shapes.append(("D backward " + repr(layer), layer.in_channels, hw, hw, k, s, p, out, out))
            hw = out
    return shapes


def profile_col2im(cupy, G, D, N, repeats):
    from tinygan.cuda import kernels as ck
    from tinygan.nn.layout import col2im_chwn
    rows = []
    for where, C, H, W, k, s, p, OH, OW in col2im_shapes(G, D, N):
        cols = cupy.random.standard_normal((C * k * k, OH * OW * N), dtype=np.float32)
        canvas = cupy.empty((C, H + 2 * p, W + 2 * p, N), dtype=np.float32)
        # as the layers do it: a padded canvas, then its border cut away -> (C, H, W, N)
        array_code = gpu_ms(cupy, lambda: col2im_chwn(cols, canvas, k, s)[:, p:p + H, p:p + W].copy(), repeats)
        gather = gpu_ms(cupy, lambda: ck.col2im_canvas_gather(cols, canvas, k, s)[:, p:p + H, p:p + W].copy(), repeats)
        fused = gpu_ms(cupy, lambda: ck.col2im_gather(cols, (C, H, W, N), k, s, p), repeats)
        same = bool(cupy.allclose(ck.col2im_gather(cols, (C, H, W, N), k, s, p),
                                  col2im_chwn(cols, canvas, k, s)[:, p:p + H, p:p + W], rtol=1e-5, atol=1e-5))
        rows.append({"where": where, "image": [N, C, H, W], "k_s_p": [k, s, p], "array_code_ms": array_code,
                     "gather_canvas_ms": gather, "gather_unpadded_ms": fused, "results_agree": same})
    return rows


def profile_adam(cupy, G, repeats):
    from tinygan.cuda import kernels as ck
    from tinygan.optim import Adam
    params = G.parameters()
    for p in params:
        p.grad[...] = cupy.random.standard_normal(p.shape, dtype=np.float32) * 1e-3
    opt = Adam(params, lr=2e-4, betas=(0.5, 0.999))
    array_code = gpu_ms(cupy, opt.step, repeats)
    state = [(cupy.zeros_like(p.data), cupy.zeros_like(p.data)) for p in params]
    step = {"t": 0}

    def fused():
        step["t"] += 1
        for p, (m, v) in zip(params, state):
            ck.adam_update(p.data, p.grad, m, v, step["t"], 2e-4, 0.5, 0.999, 1e-8)

    return {"parameters": len(params), "elements": int(sum(p.data.size for p in params)),
            "array_code_ms": array_code, "fused_kernel_ms": gpu_ms(cupy, fused, repeats)}


def profile_bn_act(cupy, D, N, repeats):
    from tinygan.nn import BatchNorm2d, LeakyReLU
    from tinygan.cuda import kernels as ck
    rows, hw = [], D.image_size
    for layer in D.main:
        if hasattr(layer, "stride"):
            hw = (hw + 2 * layer.padding - layer.kernel_size) // layer.stride + 1
        if isinstance(layer, BatchNorm2d):
            x = cupy.random.standard_normal((N, layer.num_features, hw, hw), dtype=np.float32)
            bn, act = BatchNorm2d(layer.num_features).to("cupy"), LeakyReLU(0.2)

            def fused():
                mean = x.mean(axis=(0, 2, 3))
                xc = x - mean.reshape(1, -1, 1, 1)
                inv_std = 1 / cupy.sqrt((xc * xc).mean(axis=(0, 2, 3)) + bn.eps)
                return ck.batchnorm_act(x, mean, inv_std, bn.weight.data, bn.bias.data, 0.2)

            rows.append({"shape": list(x.shape), "array_code_ms": gpu_ms(cupy, lambda: act(bn(x)), repeats),
                         "stats_plus_kernel_ms": gpu_ms(cupy, fused, repeats)})
    return rows


def sections(cupy, G, D, N, repeats):
    """(name, function) of each part of the profile, in the order they run."""
    return [("layers", lambda: profile_layers(cupy, G, D, N, 100, repeats)),
            ("col2im", lambda: profile_col2im(cupy, G, D, N, repeats)),
            ("adam", lambda: profile_adam(cupy, G, repeats)),
            ("bn_act", lambda: profile_bn_act(cupy, D, N, repeats))]


def one_line(name, part):
    """A section's result in a line, as the session prints it while the profile runs."""
    if "error" in part:
        return f"FAILED: {part['error']}"
    if name == "layers":
        return f"every layer once {sum(r['forward_ms'] + r['backward_ms'] for r in part):.2f} ms"
    if name == "col2im":
        return (f"array code {sum(r['array_code_ms'] for r in part):.3f} ms, gather kernel "
                f"{sum(r['gather_unpadded_ms'] for r in part):.3f} ms, agree: {all(r['results_agree'] for r in part)}")
    if name == "adam":
        return f"array code {part['array_code_ms']:.3f} ms, fused kernel {part['fused_kernel_ms']:.3f} ms"
    return (f"array code {sum(r['array_code_ms'] for r in part):.3f} ms, statistics + kernel "
            f"{sum(r['stats_plus_kernel_ms'] for r in part):.3f} ms")


def run_sections(cupy, G, D, N, repeats, result, out=None):
    """Each section into ``result``; after each, ``out`` (if given) is rewritten and a line printed
    (to stderr): a section that fails is recorded as {"error": ...} and the next one still runs."""
    for name, fn in sections(cupy, G, D, N, repeats):
        t = time.perf_counter()
        try:
            result[name] = fn()
        except Exception as e:                                   # keep what the other sections measure
            result[name] = {"error": f"{type(e).__name__}: {e}"}
        if out:
            with open(out + ".part", "w") as f:
                json.dump(result, f, indent=1)
            os.replace(out + ".part", out)
        print(f"profile: {name}: {one_line(name, result[name])} ({time.perf_counter() - t:.1f} s)",
              file=sys.stderr, flush=True)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object at the end")
    ap.add_argument("--out", metavar="FILE", help="write the JSON to FILE after every section (what is "
                                                   "measured survives a section that fails or a time limit)")
    ap.add_argument("--image-size", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--features", type=int, default=64, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import tinygan
    from tinygan.dcgan import build
    try:
        tinygan.use("cupy", np.float32)
    except RuntimeError as e:                             # no CuPy, or no GPU: one line, not a traceback
        print(f"gpu_profile.py: needs CuPy and a GPU: {e}", file=sys.stderr)
        return 2
    import cupy
    G, D = build("paper", 100, args.features, args.image_size, seed=0)
    G.to("cupy", np.float32), D.to("cupy", np.float32)
    N = args.batch_size
    result = {"device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(), "batch_size": N,
              "repeats": args.repeats}
    run_sections(cupy, G, D, N, args.repeats, result, args.out)
    if args.json:
        print(json.dumps(result, indent=1))
    elif not args.out:
        print_table(result, args.repeats)
    return 0


def print_table(result, repeats):
    print(f"{result['device']}, batch {result['batch_size']}, median of {repeats} (ms)")
    for name in ("layers", "col2im", "adam", "bn_act"):
        if "error" in result[name]:
            print(f"\n{name}: FAILED: {result[name]['error']}")
            continue
        print(f"\n{name}: {one_line(name, result[name])}")
        if name == "layers":
            for r in result[name]:
                print(f"  {r['model']}.{r['index']:<2} {r['layer'][:58]:<58} fwd {r['forward_ms']:8.3f}  "
                      f"bwd {r['backward_ms']:8.3f}")
        elif name == "col2im":
            print("  array code / gather kernel (canvas) / gather kernel (unpadded, no copy)")
            for r in result[name]:
                print(f"  {r['where'][:60]:<60} {r['array_code_ms']:8.3f} {r['gather_canvas_ms']:8.3f} "
                      f"{r['gather_unpadded_ms']:8.3f}  agree={r['results_agree']}")
        elif name == "bn_act":
            for r in result[name]:
                print(f"  {str(r['shape']):<22} {r['array_code_ms']:8.3f} {r['stats_plus_kernel_ms']:8.3f}")


if __name__ == "__main__":
    sys.exit(main())
