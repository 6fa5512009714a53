#!/usr/bin/env python
"""The DCGAN paper's experiments on a trained checkpoint, one command each, each writing a PNG.

    python examples/explore.py walk         --checkpoint RUN/checkpoint.npz --out walk.png --gif walk.gif
    python examples/explore.py arithmetic   --checkpoint RUN/checkpoint.npz --out numbered.png
    python examples/explore.py arithmetic   --checkpoint RUN/checkpoint.npz --a 1,2,3 --b 4,5,6 --c 7,8,9 --out arithmetic.png
    python examples/explore.py memorisation --checkpoint RUN/checkpoint.npz --out nn.png
    python examples/explore.py swd          --checkpoint RUN/checkpoint.npz --out swd.png
    python examples/explore.py features     --checkpoint RUN/checkpoint.npz --out probe.png   # needs scikit-learn
    python examples/explore.py filters      --checkpoint RUN/checkpoint.npz --out filters.png
    python examples/explore.py saliency     --checkpoint RUN/checkpoint.npz --out saliency.png
    python examples/explore.py checkerboard --out checkerboard.png
    python examples/explore.py summary      --checkpoint RUN/checkpoint.npz

`python examples/explore.py COMMAND --help` says what each experiment shows. Each takes
--backend cupy to run G and D on an NVIDIA GPU (the pictures and numbers come back to the host).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

BN_HELP = ("BatchNorm in G: 'running' uses its running averages, so an image depends on its own z only "
           "(default; needed when a batch holds near-identical z); 'batch' uses the batch's statistics, "
           "as in training")


def index_list(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated indices like 3,17,42, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"indices must be >= 0, got {text!r}")
    return values


def positive_int(text):
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {v}")
    return v


def save(pixels, path):
    from tinygan.images import save_png
    save_png(pixels, path)
    print(f"wrote {path}")


def load(args):
    """G, D and the meta of --checkpoint, on --backend (numpy, or cupy: an NVIDIA GPU)."""
    from tinygan.explore import load_models
    G, D, meta = load_models(args.checkpoint, args.backend)
    return G, D, meta


# ----- walk -------------------------------------------------------------------------------
def cmd_walk(args):
    from tinygan.explore import generate, latent, walk
    from tinygan.explore.latent import walk_frames
    from tinygan.explore.pictures import labelled_rows
    from tinygan.images import make_grid
    G, _, meta = load(args)
    points = latent(meta, args.points, args.seed)
    methods = ["lerp", "slerp"] if args.method == "both" else [args.method]
    rows = []
    for m in methods:
        path = walk(points, args.steps, m)                              # (k − 1, steps, Z)
        flat = generate(G, path.reshape(-1, path.shape[-1]), args.bn)
        images = flat.reshape(path.shape[0], args.steps, *flat.shape[1:])
        rows += [(f"{m}  z{i} -> z{i + 1}", images[i]) for i in range(len(images))]
        norms = np.linalg.norm(path, axis=-1)
        print(f"{m}: {len(path)} rows of {args.steps} frames; |z| along the path from {norms.min():.2f} "
              f"to {norms.max():.2f} (endpoints ~ sqrt(Z) = {np.sqrt(path.shape[-1]):.1f})")
    save(labelled_rows(rows, scale=args.scale, label_width=130), args.out)
    if args.gif:
        from PIL import Image
        frames = walk_frames(walk(points, args.steps, methods[-1]))
        pictures = generate(G, frames, args.bn)
        gif = [Image.fromarray(make_grid(p[None], 1, 0)).resize((p.shape[2] * 4, p.shape[1] * 4), Image.NEAREST)
               for p in pictures]
        gif[0].save(args.gif, save_all=True, append_images=gif[1:], duration=80, loop=0)
        print(f"wrote {args.gif} ({len(gif)} frames)")


# ----- arithmetic -------------------------------------------------------------------------
def cmd_arithmetic(args):
    from tinygan.explore import generate, latent, neighbours, pixel_arithmetic, z_arithmetic
    from tinygan.explore.pictures import labelled_rows, numbered_grid
    G, _, meta = load(args)
    z = latent(meta, args.n, args.seed)
    images = generate(G, z, args.bn)
    if not (args.a and args.b and args.c):
        if args.a or args.b or args.c:
            sys.exit("error: give all three of --a, --b and --c (or none, to write the numbered grid)")
        save(numbered_grid(images, scale=args.scale), args.out)
        print(f"step 1 done: pick 3 exemplars of each concept from {args.out} and run again with\n"
              f"  --a i,j,k --b i,j,k --c i,j,k  (same --seed {args.seed} and --n {args.n}): shows A − B + C")
        return
    for name, idx in (("--a", args.a), ("--b", args.b), ("--c", args.c)):
        if max(idx) >= args.n:
            sys.exit(f"error: {name} {idx}: indices must be below --n {args.n}")
    y, means = z_arithmetic(z, args.a, args.b, args.c)
    ys = neighbours(y, 8, 0.25, rng=args.seed + 1)
    mean_images = generate(G, np.stack(means), args.bn)
    result = generate(G, ys, args.bn)
    pixels = pixel_arithmetic(images, args.a, args.b, args.c)[None].astype(np.float32)
    rows = [(f"A {args.a}\n-> G(mean z)", np.concatenate([images[args.a], mean_images[0:1]])),
            (f"B {args.b}\n-> G(mean z)", np.concatenate([images[args.b], mean_images[1:2]])),
            (f"C {args.c}\n-> G(mean z)", np.concatenate([images[args.c], mean_images[2:3]])),
            ("A - B + C on z:\ny, then y + U(-0.25, 0.25)", result),
            ("A - B + C on\npixels", pixels)]
    save(labelled_rows(rows, scale=args.scale, label_width=150), args.out)
    print(f"|y| = {np.linalg.norm(y):.2f}; the 8 neighbours differ from y by at most 0.25 per coordinate")


# ----- memorisation -----------------------------------------------------------------------
def cmd_memorisation(args):
    from tinygan.explore import generate, latent, load_run_images, memorisation_report
    from tinygan.explore.pictures import labelled_rows
    G, _, meta = load(args)
    train, heldout, _ = load_run_images(meta, args.data)
    samples = generate(G, latent(meta, args.n, args.seed), args.bn)
    r = memorisation_report(samples, train, heldout, k=3, rng=args.seed)
    rows = []
    for i in range(min(args.show, len(samples))):
        d = ", ".join(f"{v:.3f}" for v in r["distances"][i])
        rows.append((f"sample {i}\nNN: {d}", np.concatenate([samples[i:i + 1], train[r["indices"][i]]])))
    save(labelled_rows(rows, scale=args.scale, label_width=170), args.out)
    base = (f"{r['n_real']} held-out real images (never trained on)" if r["baseline"] == "held-out" else
            f"{r['n_real']} training images against the other training images (leave-one-out; "
            "train with --limit to hold images out)")
    print(f"mean nearest-neighbour distance (RMS per pixel value, in [-1, 1] units) to the {len(train)} training images:")
    print(f"  {len(samples)} generated samples:  {r['mean_sample_nn']:.4f}")
    print(f"  {base}:  {r['mean_real_nn']:.4f}")
    print(f"  ratio samples / real = {r['ratio']:.2f}  (well below 1 would mean G copies its training images)")


# ----- swd --------------------------------------------------------------------------------
def cmd_swd(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinygan.explore import generate, latent, load_run_images, swd
    from tinygan.images import save_figure
    G, _, meta = load(args)
    train, _, _ = load_run_images(meta, args.data)
    n = min(args.n, len(train) // 2)
    pick = np.random.default_rng(args.seed).permutation(len(train))
    real_a, real_b = train[np.sort(pick[:n])], train[np.sort(pick[n:2 * n])]
    fake = generate(G, latent(meta, n, args.seed + 1), args.bn)
    fake_vs_real, real_vs_real = swd(real_a, fake, seed=args.seed), swd(real_a, real_b, seed=args.seed)
    print(f"{n} images per set, {meta['arch']['image_size']} px")
    print(f"  generated vs real: {fake_vs_real}")
    print(f"  real vs real:      {real_vs_real}   (the floor: two halves of the training set)")

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    labels = [f"{r} px" for r in fake_vs_real.resolutions] + ["average"]
    x = np.arange(len(labels))
    axes[0].bar(x - 0.2, fake_vs_real.levels + [fake_vs_real.mean], 0.4, label="generated vs real")
    axes[0].bar(x + 0.2, real_vs_real.levels + [real_vs_real.mean], 0.4, label="real vs real")
    axes[0].set_xticks(x, labels)
    axes[0].set_ylabel("SWD ×10³")
    axes[0].set_title(f"Sliced Wasserstein distance, {n} images")
    axes[0].legend()
    log = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "log.jsonl")
    records = [json.loads(line) for line in open(log)] if os.path.isfile(log) else []
    records = [r for r in records if "swd" in r]
    if records:
        axes[1].plot([r["epoch"] for r in records], [r["swd"] for r in records], "o-")
        axes[1].axhline(real_vs_real.mean, color="gray", ls="--", label="real vs real (above)")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("SWD ×10³ (256 images)")
        axes[1].set_title("during training (--swd-every)")
        axes[1].legend()
    else:
        axes[1].text(0.5, 0.5, "train with --swd-every N\nto log SWD per epoch", ha="center", va="center")
        axes[1].set_axis_off()
    save_figure(fig, args.out)
    print(f"wrote {args.out}")


# ----- features ---------------------------------------------------------------------------
def cmd_features(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinygan.explore import extract_features, probe_accuracy
    from tinygan.explore.features import load_digits_images
    from tinygan.images import save_figure
    G, D, meta = load(args)
    arch = meta["arch"]
    try:
        images, labels = load_digits_images(arch["image_size"])
    except ImportError as e:
        sys.exit(f"error: {e}")
    order = np.random.default_rng(args.seed).permutation(len(labels))
    if args.n_train >= len(labels):
        sys.exit(f"error: --n-train {args.n_train} leaves no test images ({len(labels)} digits in all)")
    used = order[:args.n_train + (args.n_test or len(labels))]           # only these go through D
    images, labels = images[used], labels[used]
    tr, te = np.arange(args.n_train), np.arange(args.n_train, len(used))
    _, D_random = initial_models(meta)                         # the paper's random-filter baseline: D before training
    results = {}
    for name, model in (("trained D", D), ("random D", D_random)):
        f = extract_features(model, images)
        results[name] = probe_accuracy(f[tr], labels[tr], f[te], labels[te], n_classes=10, epochs=args.epochs)
        print(f"{name:10s} {f.shape[1]:6d} features  test accuracy {results[name]:.3f}")
    flat = images.reshape(len(images), -1)
    results["pixels"] = probe_accuracy(flat[tr], labels[tr], flat[te], labels[te], n_classes=10, epochs=args.epochs)
    print(f"{'pixels':10s} {flat.shape[1]:6d} features  test accuracy {results['pixels']:.3f}   (the same probe on raw pixels)")
    print(f"digits: {len(tr)} training and {len(te)} test images, upscaled 8x8 -> {arch['image_size']}x{arch['image_size']}")

    fig, ax = plt.subplots(figsize=(5.5, 3.2), dpi=100)
    names = list(results)
    bars = ax.bar(names, [results[k] for k in names], color=["tab:blue", "tab:gray", "tab:orange"])
    for b, k in zip(bars, names):
        ax.text(b.get_x() + b.get_width() / 2, results[k] + 0.01, f"{results[k]:.3f}", ha="center")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Linear probe on digits ({len(tr)} train / {len(te)} test)")
    save_figure(fig, args.out)
    print(f"wrote {args.out}")


# ----- filters ----------------------------------------------------------------------------
def initial_models(meta):
    """G and D as the run initialised them (same recipe, architecture and seed), before any training."""
    from tinygan.checkpoint import models_from_arch
    return models_from_arch(meta["arch"], seed=meta["config"].get("seed", 0))


def cmd_filters(args):
    from tinygan.explore.inspect import first_layer_weights, scale_filters
    from tinygan.explore.pictures import labelled_rows
    G, D, meta = load(args)
    _, D0 = initial_models(meta)
    w, w0 = first_layer_weights(D), first_layer_weights(D0)
    per_row = 16
    rows = []
    for name, f in (("trained D", w), ("the same D at\ninitialisation", w0), ("trained - initial\n(what was learned)", w - w0)):
        f = scale_filters(f)
        for r in range(0, len(f), per_row):
            rows.append((name if r == 0 else "", f[r:r + per_row]))
    save(labelled_rows(rows, scale=args.scale, label_width=140), args.out)
    corr = np.corrcoef(w.ravel(), w0.ravel())[0, 1]
    print(f"D's first layer: {len(w)} filters of 3x{w.shape[2]}x{w.shape[3]}, each scaled to its own largest |weight|")
    print(f"mean |w| {np.abs(w).mean():.4f} (at initialisation {np.abs(w0).mean():.4f}); mean |trained - initial| "
          f"{np.abs(w - w0).mean():.4f}; correlation with the initial filters {corr:.2f}")


# ----- saliency ---------------------------------------------------------------------------
def cmd_saliency(args):
    from tinygan.explore import generate, latent, load_run_images, saliency, saliency_map
    from tinygan.backend import to_numpy
    from tinygan.explore.pictures import heatmap, labelled_rows
    from tinygan.nn import sigmoid
    G, D, meta = load(args)
    train, _, _ = load_run_images(meta, args.data)
    real = train[np.sort(np.random.default_rng(args.seed).permutation(len(train))[:args.n])]
    fake = generate(G, latent(meta, args.n, args.seed + 1), args.bn)
    rows = []
    for name, x in (("real", real), ("generated", fake)):
        grad, logits = saliency(D, x, args.d_bn)
        p = to_numpy(sigmoid(logits))
        rows += [(f"{name}\nD(x) {p.mean():.2f} on avg", x), (f"|dD/dx| ({name})", heatmap(saliency_map(grad)))]
        print(f"{name}: D(x) = " + " ".join(f"{v:.2f}" for v in p))
    save(labelled_rows(rows, scale=args.scale, label_width=140), args.out)


# ----- checkerboard -----------------------------------------------------------------------
def cmd_checkerboard(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinygan.explore.checkerboard import (constant_response, overlap_count, phase_spread, resize_conv_layer,
                                              transpose_layer)
    from tinygan.images import save_figure
    panels = [(f"overlap count, ConvT k{k} s2 p1", overlap_count(k, 2, 1, args.size), True) for k in (3, 4, 5)]
    panels += [("random ConvT k4 s2 p1,\nconstant input", constant_response(transpose_layer(seed=args.seed)), False),
               ("random Upsample(2) + Conv k3,\nconstant input", constant_response(resize_conv_layer(seed=args.seed)), False)]
    if args.checkpoint:
        from tinygan.nn import Conv2d, ConvTranspose2d, Sequential, Upsample
        G, _, meta = load(args)
        layers = list(G.main)
        last = max(i for i, m in enumerate(layers) if isinstance(m, (Conv2d, ConvTranspose2d)))
        block = Sequential(*layers[last - 1:last + 1]) if isinstance(layers[last - 1], Upsample) else layers[last]
        channels = layers[last].in_channels
        up = meta["arch"].get("upsample", "transpose")
        panels.append((f"trained G's last layer ({up}),\nconstant input",
                       constant_response(block, args.size, channels), False))
    for title, grid, _ in panels[:3]:
        inner = grid[1:-1, 1:-1]
        print(f"{title}: interior values {sorted(set(inner.ravel().tolist()))}, border {sorted(set(grid[0].tolist()))}")
    for title, grid, _ in panels[3:]:
        print(f"{title.replace(chr(10), ' ')}: 2x2 phase spread {phase_spread(grid):.3f} "
              "(spread of the four phase means / mean |output|; 0 = no checkerboard)")
    fig, axes = plt.subplots(2, 3, figsize=(9.3, 6.8), dpi=90)
    axes = axes.ravel()
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    for ax, (title, grid, numbers) in zip(axes, panels):
        ax.imshow(grid, cmap="gray" if numbers else "viridis", interpolation="nearest")
        if numbers:
            for (i, j), v in np.ndenumerate(grid):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=6,
                        color="black" if v > grid.max() / 2 else "white")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, args.out)
    print(f"wrote {args.out}")


# ----- summary ----------------------------------------------------------------------------
def cmd_summary(args):
    from tinygan import summary
    G, D, meta = load(args)
    arch = meta["arch"]
    text = []
    for name, model, shape in (("Generator", G, (arch["latent_dim"], 1, 1)),
                               ("Discriminator", D, (3, arch["image_size"], arch["image_size"]))):
        text += [name, str(summary(model, shape, print_fn=None)), ""]
    print("\n".join(text))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(text))
        print(f"wrote {args.out}")


# ----- the command line -------------------------------------------------------------------
COMMANDS = {
    "walk": (cmd_walk, "Walk the latent space: G along lines between random z.",
             "Rows of frames G(z) along a path through --points random z, --steps frames from one point "
             "to the next (paper, section 6.1). Smooth changes, with no sudden jumps, mean G has learned a "
             "smooth map from z to images rather than memorising isolated points. lerp follows the straight "
             "line, whose middle has a smaller |z| than any z G was trained on; slerp follows the great "
             "circle and keeps |z| typical."),
    "arithmetic": (cmd_arithmetic, "Vector arithmetic on z: A - B + C, as the paper does it.",
                   "Run once without --a/--b/--c: writes a numbered grid of --n samples. Pick three exemplars "
                   "of each of three concepts by index, run again with --a, --b, --c. The z of each concept's "
                   "exemplars are averaged, combined as A - B + C = y, and G(y) is shown with eight neighbours "
                   "G(y + U(-0.25, 0.25)) (paper, section 6.3), beside the same sum done on pixels, which "
                   "gives an overlay of images rather than a new one."),
    "memorisation": (cmd_memorisation, "Does G copy its training images? Nearest neighbours in pixel space.",
                     "For --n generated samples, the 3 nearest training images (RMS pixel distance); the "
                     "picture shows --show of them. Prints the mean nearest-neighbour distance of the samples "
                     "and of real images G never saw (the images past the run's --limit, else leave-one-out). "
                     "A memorising G puts its samples much closer to the training set than unseen real images are."),
    "swd": (cmd_swd, "Sliced Wasserstein distance (ProGAN), generated vs real, per pyramid level.",
            "A quality metric that needs no downloaded network: the distributions of random 7x7 patches of a "
            "Laplacian pyramid (down to 16 px), compared along random 1-D projections (Karras et al. 2018). "
            "Lower is better; the real-vs-real value of two halves of the training set is the floor at this "
            "sample size. Plots the per-epoch values too when the run logged them (--swd-every)."),
    "features": (cmd_features, "D as a feature extractor: a linear probe on digits, trained vs random D.",
                 "Every D block's activations max-pooled to 4x4 and concatenated, then a linear classifier "
                 "(tinygan's Conv2d 1x1 + BCE one-vs-rest + Adam) on scikit-learn's 8x8 digits, upscaled "
                 "(paper, section 5.1: the discriminator's features beat random filters; the random D here is "
                 "the run's own D before training). Needs "
                 "pip install -e '.[explore]'."),
    "filters": (cmd_filters, "D's first-layer filters: trained, at initialisation, and the difference.",
                "Each of D's first-layer 3xKxK filters as a tiny RGB picture, scaled to its own largest weight: "
                "after training, as the run initialised them (the same seed), and their difference, which is "
                "what training added (a short run leaves the filters close to their random start)."),
    "saliency": (cmd_saliency, "Saliency: which pixels D's verdict depends on.",
                 "|dD(x)/dx|, max over colour channels, for real and generated images: the input gradient "
                 "that tinygan's hand-written D.backward returns for free (Simonyan et al. 2014)."),
    "checkerboard": (cmd_checkerboard, "Why transposed convolutions draw checkerboards.",
                     "How many input pixels a stride-2 ConvTranspose2d adds into each output pixel (k3: uneven "
                     "1/2/4 pattern; k4: even inside, less at the border; k5: 4/6/9), and the output of random "
                     "layers on a constant input: k4 s2 is still 2x2-periodic (its four sub-kernels differ), "
                     "Upsample + Conv2d is flat (Odena et al. 2016). No checkpoint needed; with one, the "
                     "trained G's last layer is shown too."),
    "summary": (cmd_summary, "Layer tables of G and D: output shapes and parameter counts.",
                "tinygan.summary(model, input_shape) for the checkpoint's G and D, like Keras's model.summary()."),
}


def parser():
    p = argparse.ArgumentParser(prog="explore.py", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(f"  {k:13s} {v[1]}" for k, v in COMMANDS.items()))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, short, long) in COMMANDS.items():
        s = sub.add_parser(name, help=short, description=f"{short}\n\n{long}")
        needs_ckpt = name not in ("checkerboard",)
        s.add_argument("--checkpoint", required=needs_ckpt, help="checkpoint.npz written by examples/pokemon.py"
                       + ("" if needs_ckpt else " (optional: adds the trained G's last layer)"))
        s.add_argument("--out", required=name != "summary", help="PNG file to write" if name != "summary"
                       else "also write the tables to this text file")
        s.add_argument("--seed", type=int, default=0, help="seed of the random z / choices (default 0)")
        s.add_argument("--backend", choices=["numpy", "cupy"], default="numpy",
                       help="where G and D run: numpy (CPU, default) or cupy (an NVIDIA GPU)")
        if name in ("walk", "arithmetic", "memorisation", "swd", "saliency"):
            s.add_argument("--bn", choices=["running", "batch"], default="running", help=BN_HELP)
        if name in ("walk", "arithmetic", "memorisation", "filters", "saliency"):
            s.add_argument("--scale", type=positive_int, default=3, help="enlarge pixels (default 3)")
        if name in ("memorisation", "swd", "saliency"):
            s.add_argument("--data", help="image folder, if the run's saved path does not resolve from here")
    sp = sub.choices
    sp["walk"].add_argument("--points", type=positive_int, default=6, help="random z to visit (default 6: 5 rows)")
    sp["walk"].add_argument("--steps", type=positive_int, default=10, help="frames per row (default 10)")
    sp["walk"].add_argument("--method", choices=["slerp", "lerp", "both"], default="slerp",
                            help="spherical (default), linear, or both one under the other")
    sp["walk"].add_argument("--gif", help="also write the walk as an animated GIF")
    sp["arithmetic"].add_argument("--n", type=positive_int, default=64, help="samples in the numbered grid (default 64)")
    for c in "abc":
        sp["arithmetic"].add_argument(f"--{c}", type=index_list, help=f"three indices of concept {c.upper()}, e.g. 3,17,42")
    sp["memorisation"].add_argument("--n", type=positive_int, default=256, help="generated samples (default 256)")
    sp["memorisation"].add_argument("--show", type=positive_int, default=12, help="rows in the picture (default 12)")
    sp["swd"].add_argument("--n", type=positive_int, default=512, help="images per set (default 512; at most half the data)")
    sp["features"].add_argument("--n-train", type=positive_int, default=1000, help="digits to train the probe on (default 1000; the other 797 test it)")
    sp["features"].add_argument("--n-test", type=positive_int, help="digits to test on (default: all the others)")
    sp["features"].add_argument("--epochs", type=positive_int, default=30, help="probe training epochs (default 30)")
    sp["saliency"].add_argument("--n", type=positive_int, default=8, help="images per row (default 8)")
    sp["saliency"].add_argument("--d-bn", choices=["batch", "running"], default="batch",
                                help="BatchNorm in D: 'batch' (default) judges a batch of real or of generated "
                                     "images as in training; 'running' uses the running averages, which mix "
                                     "real and fake batches (D may then call everything fake)")
    sp["checkerboard"].add_argument("--size", type=positive_int, default=8, help="input side of the overlap maps (default 8)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    func = COMMANDS[args.command][0]
    try:
        func(args)
    except (ValueError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
