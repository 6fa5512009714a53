"""Does a quality metric order the reference grids as a person does? SWD beside KID, precision and recall
in the features of tinygan's own feature network (tinygan/featuremetric.py).

    .venv/bin/python benchmarks/metric_check.py                        # contrastive net, block 1, seeds 0 1 2
    .venv/bin/python benchmarks/metric_check.py --task rotation --block all --seeds 0

The sets, 64 images each, every one scored against the REFERENCE sprites (the 1,332 of
--data less 64 held out at random, seed 1234; the feature nets are trained on these too):
  * real     the 64 held-out sprites (what a perfect generator would score)
  * the five grids of --grids (../shared/quality-reference): 64 tiles cut out of each
    (the PNG is make_grid's 8×8 tiling, padding 2, white, saved at 2×: every 2×2 block
    one pixel, tile r, c at 2 + 34·r, 2 + 34·c); before anything else the cut is checked
    on a grid this script makes and saves itself, tile for tile, bit for bit
  * noise    uniform random pixels (uint8, as a PNG would hold them)

A person orders them: real, then pytorch_diffaugment_20000 (the only one with
creatures), then pytorch_paper_5040, tinygan_demo_5040 and pytorch_diffaugment_5040 (one
group, in any order), then pytorch_paper_20000 (colour noise), then noise. A metric
"holds the order" when every set is better than every set of a later group.

Columns: SWD ×10³ (tinygan.swd, 64 vs 64: mean ± std over 5 reference subsets of 64 — at
this size it is noisy); KID ×10³ per feature-net seed (mean ± std over 100 subsets of 50
of each set); KID's mean ± std over the seeds; its sampling sd (how far KID of 64 samples
would move with another 64 from the same generator, estimated from disjoint halves of the
set; the seeds all see the same 64 samples, so their agreement says nothing about this);
precision and recall (k = 3, the samples against all reference sprites; means over the
seeds). Then, for SWD, KID and precision, whether each holds a person's order, and KID's
margin between neighbouring groups in sampling sd. Also printed: the time to train a net,
and to score 1,024 images (features and KID against the reference set).
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(1, ROOT)                        # tinygan from this checkout, installed or not
import threads as threadctl  # noqa: E402  (stdlib only: safe before numpy)

DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "pokesprite-gen8")
DEFAULT_GRIDS = os.path.join(ROOT, "..", "shared", "quality-reference")
# a person's order, best first; the sets of one group are not ordered among themselves
GROUPS = [["real"], ["pytorch_diffaugment_20000"],
          ["pytorch_paper_5040", "tinygan_demo_5040", "pytorch_diffaugment_5040"],
          ["pytorch_paper_20000"], ["noise"]]
N_SET, SPLIT_SEED, SIZE, PAD, SCALE = 64, 1234, 32, 2, 2


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--grids", default=DEFAULT_GRIDS, help="folder of the reference grid PNGs")
    ap.add_argument("--task", default="contrastive", choices=("contrastive", "rotation"))
    ap.add_argument("--block", default="1", choices=("0", "1", "2", "all"), help="which block's features")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="feature-net seeds")
    ap.add_argument("--no-cache", action="store_true", help="train the nets even if $TINYGAN_HOME has them")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (the nets are trained single-threaded)")
    return ap.parse_args(argv)


def grid_tiles(path, n=N_SET, size=SIZE, padding=PAD, scale=SCALE):
    """The n tiles of a make_grid PNG saved at ``scale``: uint8 (n, size, size, 3), row by row.

    Checks that the picture is what make_grid + save_png(scale) write: its size, every
    scale×scale block one colour, and the padding white.
    """
    from PIL import Image
    grid = np.asarray(Image.open(path).convert("RGB"))
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    expected = (scale * (rows * (size + padding) + padding), scale * (cols * (size + padding) + padding), 3)
    if grid.shape != expected:
        raise ValueError(f"{path}: {grid.shape}, expected {expected} for {n} tiles of {size} px at {scale}x")
    small = grid[::scale, ::scale]
    if not all((grid[dy::scale, dx::scale] == small).all() for dy in range(scale) for dx in range(scale)):
        raise ValueError(f"{path}: not a nearest-neighbour {scale}x enlargement")
    step = size + padding
    tiles = np.stack([small[padding + r * step:padding + r * step + size, padding + c * step:padding + c * step + size]
                      for r, c in (divmod(i, cols) for i in range(n))])
    pad = np.ones(small.shape[:2], bool)
    for r, c in (divmod(i, cols) for i in range(n)):
        pad[padding + r * step:padding + r * step + size, padding + c * step:padding + c * step + size] = False
    if not (small[pad] == 255).all():
        raise ValueError(f"{path}: the padding between the tiles is not white")
    return tiles


def check_cut(images):
    """make_grid + save_grid(scale=2) of ``images``, cut again: the same uint8 pixels, or AssertionError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "grid.png")
        save_grid(images, path, scale=SCALE)
        back = grid_tiles(path, n=len(images))
    if not np.array_equal(back, to_uint8(images)):
        raise AssertionError("cutting a saved grid did not give back its tiles")
    return True


def sample_sets(real, grids_dir, rng):
    """{name: (64, 3, 32, 32) in [-1, 1]}: held-out real, each reference grid, noise; and the reference set."""
    order = rng.permutation(len(real))
    sets = {"real": real[order[:N_SET]]}
    reference = real[order[N_SET:]]
    for group in GROUPS[1:-1]:
        for name in group:
            sets[name] = from_uint8(grid_tiles(os.path.join(grids_dir, name + ".png")))
    sets["noise"] = from_uint8(rng.integers(0, 256, (N_SET, SIZE, SIZE, 3), dtype=np.uint8))
    return sets, reference


def swd_column(sets, reference, rng, repeats=5):
    """{name: (mean, std)} of SWD ×10³ of each set against ``repeats`` random 64-sprite reference subsets."""
    subsets = [reference[rng.choice(len(reference), N_SET, replace=False)] for _ in range(repeats)]
    out = {}
    for name, x in sets.items():
        values = [swd(x, s).mean for s in subsets]
        out[name] = (float(np.mean(values)), float(np.std(values)))
    return out


def sampling_sd(ref, f, splits=50, seed=0):
    """How much KID (×10³) of 64 samples would move with 64 other samples from the same generator.

    Estimated from the set itself: KID of disjoint random halves (32 samples each) against
    the reference set; its variance is about twice that of a 64-sample KID, so sd/√2.
    """
    rng, values = np.random.default_rng(seed), []
    for _ in range(splits):
        order = rng.permutation(len(f))
        half = len(f) // 2
        values += [fm.mmd2_unbiased(ref, f[order[:half]]), fm.mmd2_unbiased(ref, f[order[half:]])]
    return 1e3 * float(np.std(values)) / np.sqrt(2)


def feature_columns(net, sets, reference, block):
    """{name: (KID mean, KID std over subsets, KID sampling sd, precision, recall)} for one net (KID ×10³)."""
    ref = fm.features(net, reference, block=block)
    out = {}
    for name, x in sets.items():
        f = fm.features(net, x, block=block)
        k_mean, k_std = fm.kid(ref, f, subsets=100, subset_size=50)
        out[name] = (1e3 * k_mean, 1e3 * k_std, sampling_sd(ref, f), *fm.precision_recall(ref, f, k=3))
    return out


def violations(scores, lower_is_better=True):
    """The pairs (better, worse) of a person's order that ``scores`` ({name: value}) gets the wrong way round."""
    sign = 1 if lower_is_better else -1
    bad = []
    for g, group in enumerate(GROUPS):
        for later in GROUPS[g + 1:]:
            bad += [(a, b) for a in group for b in later if not sign * scores[a] < sign * scores[b]]
    return bad


def verdict(name, scores, lower_is_better=True):
    bad = violations(scores, lower_is_better)
    return (f"  {name:<22} " + ("holds the order" if not bad else
                                f"breaks it in {len(bad)} pair(s): " + ", ".join(f"{a} !< {b}" for a, b in bad)))


def scoring_time(net, reference, block, rng):
    """Seconds to score 1,024 images: their features, then KID against the reference set."""
    x = reference[rng.choice(len(reference), 1024)]
    ref = fm.features(net, reference, block=block)
    t0 = time.perf_counter()
    f = fm.features(net, x, block=block)
    t1 = time.perf_counter()
    fm.kid(ref, f, subsets=100, subset_size=1000)
    return t1 - t0, time.perf_counter() - t1


def num(v, width):
    """A number in ``width`` characters: fixed point while it fits, else 3 significant digits."""
    text = f"{v:.1f}"
    return f"{text if len(text) <= width else f'{v:.2e}':>{width}}"


def print_table(sets, swd_cols, per_seed, seeds):
    head = f"{'set':<27}{'SWD x1e3':>13}" + "".join(f"{'KID x1e3, seed ' + str(s):>22}" for s in seeds)
    print(head + f"{'KID, seeds':>22}{'sampling sd':>12}{'P':>6}{'R':>6}")
    for name in sets:
        mean = lambda i: float(np.mean([per_seed[s][name][i] for s in seeds]))      # noqa: E731
        kids = [per_seed[s][name][0] for s in seeds]
        row = f"{name:<27}{swd_cols[name][0]:>7.1f} ± {swd_cols[name][1]:<3.1f}"
        row += "".join(f"{num(per_seed[s][name][0], 10)} ± {num(per_seed[s][name][1], 9)}" for s in seeds)
        row += f"{num(np.mean(kids), 10)} ± {num(np.std(kids), 9)}{num(mean(2), 12)}"
        print(row + f"{mean(3):>6.2f}{mean(4):>6.2f}")


def margins(scores, sds):
    """Between each group and the next: (worst of the one minus best of the next) / sd of that difference."""
    lines = []
    for better, worse in zip(GROUPS, GROUPS[1:]):
        a = max(better, key=lambda n: scores[n])
        b = min(worse, key=lambda n: scores[n])
        gap = scores[b] - scores[a]
        lines.append(f"{a} → {b}: {gap:+.1f} = {gap / np.hypot(sds[a], sds[b]):+.1f} sd")
    return lines


def print_verdicts(swd_cols, per_seed, seeds):
    print("\nagainst a person's order (" + " < ".join("/".join(g) for g in GROUPS) + "):")
    names = list(swd_cols)
    print(verdict("SWD", {n: swd_cols[n][0] for n in names}))
    for s in seeds:
        print(verdict(f"KID, seed {s}", {n: per_seed[s][n][0] for n in names}))
    kid_mean = {n: float(np.mean([per_seed[s][n][0] for s in seeds])) for n in names}
    print(verdict("KID, mean of seeds", kid_mean))
    for s in seeds:
        print(verdict(f"precision, seed {s}", {n: per_seed[s][n][3] for n in names}, lower_is_better=False))
    print(verdict("precision, mean", {n: np.mean([per_seed[s][n][3] for s in seeds]) for n in names},
                  lower_is_better=False))
    sds = {n: float(np.mean([per_seed[s][n][2] for s in seeds])) for n in names}
    print("\nKID margins between neighbouring groups (mean of seeds), in sampling sd of 64 samples:")
    for line in margins(kid_mean, sds):
        print("  " + line)


def main(argv=None):
    args = parse_args(argv)
    real = load_images(args.data, image_size=SIZE, background=(255, 255, 255), trim=True, verbose=False).images
    rng = np.random.default_rng(SPLIT_SEED)
    sets, reference = sample_sets(real, args.grids, rng)
    print(f"cut-out check: a {N_SET}-sprite grid saved at {SCALE}x and cut again gives its tiles back bit for bit: "
          f"{check_cut(sets['real'])}")
    print(f"{len(reference)} reference sprites; sets of {N_SET}; feature net: task {args.task}, block {args.block}, "
          f"seeds {args.seeds}; BLAS threads {threadctl.blas_threads()}\n")
    block = None if args.block == "all" else int(args.block)
    swd_cols = swd_column(sets, reference, rng)
    per_seed, train_times = {}, []
    for seed in args.seeds:
        t0 = time.perf_counter()
        if args.no_cache:
            net = fm.train_feature_net(reference, seed=seed, task=args.task)
        else:
            net = fm.cached_feature_net(reference, seed=seed, task=args.task)
        train_times.append(time.perf_counter() - t0)
        per_seed[seed] = feature_columns(net, sets, reference, block)
    print_table(sets, swd_cols, per_seed, args.seeds)
    print_verdicts(swd_cols, per_seed, args.seeds)
    t_feat, t_kid = scoring_time(net, reference, block, rng)
    print(f"\nfeature net (train or load from cache), per seed: " + ", ".join(f"{t:.1f} s" for t in train_times))
    print(f"scoring 1,024 images: features {t_feat:.2f} s, KID against the {len(reference)} reference sprites "
          f"(100 subsets of 1,000) {t_kid:.2f} s")


if __name__ == "__main__":
    threadctl.configure(parse_args().threads)      # before numpy loads OpenBLAS, which reads it once
    import numpy as np
    from tinygan import featuremetric as fm
    from tinygan.data import load_images
    from tinygan.images import from_uint8, save_grid, to_uint8
    from tinygan.swd import swd
    main()
