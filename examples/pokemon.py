#!/usr/bin/env python
"""Train the DCGAN on Pokémon sprites with tinygan, sample a trained generator, or export it.

    python examples/pokemon.py --data ../shared/data/pokesprite-gen8          # CPU demo
    python examples/pokemon.py --backend cupy                                # d2l's full job on a GPU
    python examples/pokemon.py --resume runs/pokemon/checkpoint.npz --epochs 30
    python examples/pokemon.py sample --checkpoint runs/pokemon/checkpoint.npz --n 64 --out grid.png
    python examples/pokemon.py sample --checkpoint netG_epoch_24.pth          # a PyTorch-trained G
    python examples/pokemon.py export --checkpoint runs/pokemon/checkpoint.npz --out netG.pth
"""
import argparse
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

EPILOG = """\
defaults depend on the backend:
  numpy: 32x32 images, features 32, batch 32, 120 epochs (5,040 steps on the 1,332 sprites)
  cupy:  d2l's full job: 64x64, features 64, batch 256, 20 epochs
`make demo` runs --recipe sprites --steps 20160, the length at which that recipe's samples
become creatures: 10-22 minutes of training on the 2-core machines measured
(benchmarks/RESULTS.md, "The demo from a fresh clone").
Without --data, d2l's Pokémon zip is downloaded once into $TINYGAN_HOME (~/.cache/tinygan).
Speed on numpy: with Numba installed (pip install -e '.[fast]'; `make demo` does) the layers run
a few compiled loops; TINYGAN_JIT=0 runs their NumPy versions instead (the same numbers, slower).

To sample a trained generator (tinygan's checkpoint.npz, or a PyTorch netG .pth):
  python examples/pokemon.py sample --checkpoint RUN/checkpoint.npz --n 64 --out grid.png
To write G and D as PyTorch state_dicts (netG.pth, and netD.pth beside it):
  python examples/pokemon.py export --checkpoint RUN/checkpoint.npz --out netG.pth
"""


def label(text):
    return probability(text, " (1: no smoothing)")


def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {v}")
    return v


def positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def probability(text, note=""):
    """A number in (0, 1]; ``note`` says what 1 means where that helps (``label``)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]{note}, got {v}")
    return v


def image_size(text):
    v = positive_int(text)
    if v < 16 or v & (v - 1):
        raise argparse.ArgumentTypeError(f"must be a power of two >= 16 (16, 32, 64, 128), got {v}")
    return v


def beta(text):
    v = float(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return v


def color(text):
    from tinygan.data import parse_color
    try:
        parse_color(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def train_parser():
    p = argparse.ArgumentParser(
        prog="pokemon.py", description="Train the DCGAN of Radford et al. (2015) on Pokémon sprites "
        "with tinygan's hand-written layers.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["numpy", "cupy"],
                   help="array library: numpy (CPU, the default) or cupy (NVIDIA GPU)")
    p.add_argument("--data", metavar="FOLDER_OR_ZIP",
                   help="image folder (searched recursively) or .zip; default: download d2l's Pokémon set")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/pokemon, or the resumed run's)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_int, help="epochs to train in all (numpy 120, cupy 20)")
    length.add_argument("--steps", type=positive_int, metavar="N",
                        help="optimizer steps (batches) to train in all, instead of --epochs: the epochs "
                             "follow from the data set's size, and the run stops after step N even part-way "
                             "through an epoch. `make demo` runs 20160, whatever the data")
    p.add_argument("--batch-size", type=positive_int, help="images per step (numpy 32, cupy 256)")
    p.add_argument("--image-size", type=image_size, help="side of the square images (numpy 32, cupy 64)")
    p.add_argument("--latent-dim", type=positive_int, help="size of z (default 100)")
    p.add_argument("--features", type=positive_int, help="channels of D's first / G's last block (numpy 32, cupy 64)")
    p.add_argument("--recipe", choices=["paper", "d2l", "sprites"],
                   help="paper: the DCGAN paper's (default); d2l: d2l.ai's chapter (BN on D's input, "
                        "N(0,0.02) for every parameter, lr 0.005, summed BCE); sprites: the paper's + "
                        "DiffAugment (colour, translation, cutout on all D sees), for small data sets, with "
                        "its pictures drawn by the moving average of G (--ema 0.999)")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate (paper 0.0002, d2l 0.005)")
    p.add_argument("--beta1", type=beta, help="Adam beta1 (default 0.5)")
    p.add_argument("--lr-d", type=positive_float, metavar="LR",
                   help="D's own learning rate (default: --lr); e.g. 4e-4 with --lr 1e-4 is the "
                        "two-time-scale rule (TTUR, Heusel et al. 2017)")
    p.add_argument("--real-label", type=label, metavar="Y",
                   help="D's target for real images (default 1); 0.9 is one-sided label smoothing "
                        "(Salimans et al. 2016)")
    p.add_argument("--instance-noise", type=positive_float, metavar="SIGMA",
                   help="Gaussian noise of std SIGMA (images are in [-1, 1]) on everything D sees, real and "
                        "fake, annealed linearly to 0 by the last step (Sonderby et al. 2016); default none")
    c = p.add_argument_group("small-data candidates of issue 26 (each off by default; benchmarks/screen.py "
                             "screens them against --recipe sprites)")
    c.add_argument("--flip", action="store_true", default=None, help="mirror the real images left-right at random (p 1/2)")
    c.add_argument("--augment-policy", metavar="MAPS", help="DiffAugment's maps, e.g. color,translation (default: "
                   "the recipe's; sprites: color,translation,cutout)")
    c.add_argument("--augment-p", type=probability, metavar="P",
                   help="apply each DiffAugment map to each image with probability P (default 1)")
    c.add_argument("--ada-target", type=probability, metavar="R", help="adapt that probability from the sign of "
                   "D's outputs on real images toward R, from 0 (StyleGAN2-ADA, Karras et al. 2020: 0.6)")
    c.add_argument("--ada-kimg", type=positive_float, metavar="K",
                   help="ADA's speed: K thousand images for the probability to move by 1 (default 100)")
    c.add_argument("--lecam", type=positive_float, metavar="WEIGHT",
                   help="LeCam regularisation of D's outputs with this weight (Tseng et al. 2021)")
    c.add_argument("--bcr", type=positive_float, metavar="WEIGHT",
                   help="balanced consistency regularisation: D scores two augmentations of each real and fake "
                        "image alike, with this weight (Zhao et al. 2020's lambda 10 is 5 here, where D's loss is "
                        "the mean of its two halves; two more D forwards and a backward per half)")
    c.add_argument("--topk-gamma", type=probability, metavar="G", help="G learns only from the k fakes D scores "
                   "highest, k = batch x G^epoch down to half the batch (Sinha et al. 2020: 0.99)")
    c.add_argument("--loss", choices=["bce", "hinge"], help="D's loss: bce (the paper's, default) or hinge (SN-GAN's; "
                   "G's loss is then -D(G(z)))")
    c.add_argument("--ema-rampup", type=positive_float, metavar="R",
                   help="ramp the moving average's half-life up to --ema's: R x the steps so far (ADA: 0.05)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="use only the first N images")
    p.add_argument("--resize", choices=["pad", "stretch", "crop"],
                   help="making images square: pad with the background (default), stretch (d2l), crop")
    p.add_argument("--background", type=color, help="colour behind transparent pixels: white (default), black, or #rrggbb")
    p.add_argument("--no-trim", dest="trim", action="store_false", default=None,
                   help="keep transparent borders (by default they are cropped away, so small sprites "
                        "in large frames fill the image)")
    p.add_argument("--seed", type=int, help="random seed for weights, data order and noise (default 0)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in CHECKPOINT")
    p.add_argument("--no-progress", action="store_true", help="one log line per epoch instead of a bar")
    p.add_argument("--upsample", choices=["transpose", "nearest"],
                   help="G's x2 steps: transpose = ConvTranspose2d k4 s2 (the paper's, default); nearest = "
                        "Upsample(2) + Conv2d k3, no checkerboard pattern built in")
    p.add_argument("--d-spectral-norm", action="store_true", default=None,
                   help="spectrally normalise D's convolutions (W/sigma(W), Miyato et al. 2018) and drop "
                        "D's BatchNorm, as SN-GAN's D has none")
    p.add_argument("--d-minibatch-std", action="store_true", default=None,
                   help="a minibatch-standard-deviation channel before D's last convolution (ProGAN): "
                        "D sees how varied the batch is")
    p.add_argument("--ema", type=beta, metavar="BETA",
                   help="keep a moving average of G's weights and draw the pictures with it (the epoch "
                        "grids, --swd-every, and what `sample` draws by default): "
                        "avg = BETA*avg + (1-BETA)*weights after every step (0.999: about the last 1,000 "
                        "steps; Yazici et al. 2019); kept in the checkpoint, never trained. 0: G itself. "
                        "Default: the recipe's (sprites 0.999, paper and d2l 0)")
    p.add_argument("--swd-every", type=positive_int, metavar="N",
                   help="every N epochs compute the sliced Wasserstein distance (ProGAN) between 256 real "
                        "images and 256 samples, print it and log it as 'swd' in log.jsonl (a few seconds)")
    p.add_argument("--summary", action="store_true",
                   help="print the layer tables of G and D (output shapes, parameter counts) before training")
    p.add_argument("--tf32", action="store_true", default=None,
                   help="cupy: float32 matmuls on TF32 tensor cores (Ampere and later): faster, inputs "
                        "rounded to 10 mantissa bits, sums in FP32, as PyTorch's cuDNN convolutions by default; sets "
                        "CUPY_TF32=1 before CuPy is imported. Default: strict FP32 (unless CUPY_TF32 is "
                        "set already). Does nothing on numpy, whose float32 is always strict")
    return p


def sample_parser():
    p = argparse.ArgumentParser(
        prog="pokemon.py sample", description="Draw images from a trained generator: a tinygan run's "
        "checkpoint.npz, or a generator trained with PyTorch (pytorch/examples' DCGAN netG_epoch_N.pth, "
        "d2l.ai's net_G), whose architecture is inferred from its weight shapes.")
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint.npz written by a training run, or a generator's state_dict as .pth/.pt "
                        "(needs torch) or .safetensors (needs safetensors)")
    p.add_argument("--n", type=positive_int, default=64, help="number of images (default 64)")
    p.add_argument("--out", default="samples.png", help="PNG file to write (default samples.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    p.add_argument("--bn", choices=["batch", "running", "own"], default="batch",
                   help="BatchNorm statistics: 'batch' uses this batch's (as during training and in the "
                        "epoch grids; default), 'running' the running averages (G.eval()); the moving "
                        "average of G uses G's running statistics (copied from G, not re-estimated); 'own' "
                        "re-estimates them from 8 batches of 64 drawn by the weights being sampled, then "
                        "uses them (tinygan.ema.reestimate_batchnorm)")
    p.add_argument("--weights", choices=["auto", "ema", "last"], default="auto",
                   help="a tinygan checkpoint's generator: 'ema' the moving average of its weights (runs "
                        "with --ema, as the sprites recipe's; what the epoch grids show), 'last' the weights "
                        "of its last step; 'auto' (default): ema where the checkpoint has it, else last")
    p.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    p.add_argument("--scale", type=positive_int, default=2, help="enlarge the grid's pixels (default 2)")
    return p


def print_summaries(cfg):
    """The layer tables of the run's G and D (tinygan.summary), built from its settings."""
    from tinygan import summary
    from tinygan.checkpoint import models_from_arch
    from tinygan.train import check_memory
    c = cfg.resolved()
    check_memory(c)                          # models that would not fit are refused before they are built
    G, D = models_from_arch(c.arch())
    print("Generator")
    summary(G, (c.latent_dim, 1, 1))
    print("Discriminator")
    summary(D, (3, c.image_size, c.image_size))


def chores(cfg):
    """What the run does after every epoch, in order (tinygan/callbacks.py): the numbers first,
    then what saves them, then the pictures. Add your own Callback here."""
    from tinygan import callbacks as cb
    cheap = cb.Throttled                 # after the first and last epochs, else while it costs < share
    return [*([cb.SWD(cfg.swd_every)] if cfg.swd_every else []),   # record["swd"], before it is saved
            cb.DWinsWarning(),                                     # D rejects every fake: say so, once
            cheap(cb.Checkpoint(), 0.004), cb.LogFile(),           # checkpoint.npz, log.jsonl
            cheap(cb.SampleGrids(), 0.0025),                       # samples_epoch_NNN.png
            cheap(cb.ProgressGif(), 0.001), cheap(cb.LossPlot(), 0.0025),   # progress.gif, losses.png
            *([] if cfg.progress else [cb.EpochLine()])]           # --no-progress: a line per epoch


def main_train(argv):
    from tinygan import checkpoint
    from tinygan.train import RUN_DEFINING, Config, TrainingDiverged, run

    parser = train_parser()
    args = parser.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("resume", "no_progress")}
    if args.resume:
        if not os.path.isfile(args.resume):
            parser.error(f"--resume: checkpoint {args.resume} does not exist")
        try:
            saved = checkpoint.load(args.resume)["meta"]["config"]
        except (checkpoint.CheckpointError, KeyError) as e:
            parser.error(f"--resume: {e}")
        clash = [f"--{k.replace('_', '-')} {given[k]} (checkpoint: {saved.get(k, getattr(Config, k, None))})"
                 for k in RUN_DEFINING if k in given and given[k] != saved.get(k, getattr(Config, k, None))]
        if clash:
            parser.error("--resume continues the saved run; these flags differ from it: " + ", ".join(clash))
        settings = {**saved, **given, "out": given.get("out") or os.path.dirname(os.path.abspath(args.resume))}
        if "epochs" in given or "steps" in given:           # the length given now replaces the saved one
            settings.update({k: given.get(k) for k in ("epochs", "steps")})
    else:
        settings = given
    settings["progress"] = not args.no_progress
    cfg = Config(**{k: v for k, v in settings.items() if k in Config.__dataclass_fields__})
    try:
        if args.summary:
            print_summaries(cfg)
        run(cfg, resume=args.resume, callbacks=chores(cfg))
    except KeyboardInterrupt as e:
        print(f"\n{e}" if str(e) else "\ninterrupted", file=sys.stderr)
        return 130
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def main_sample(argv):
    import numpy as np

    from tinygan import backend, memory, torch_weights
    from tinygan.checkpoint import load, load_models
    from tinygan.images import save_grid
    from tinygan.nn import sampling

    parser = sample_parser()
    args = parser.parse_args(argv)
    weights = "last"
    try:
        if args.checkpoint.lower().endswith(torch_weights.SUFFIXES):      # PyTorch's weights
            if args.weights == "ema":
                parser.error(f"--weights ema: {args.checkpoint} is a PyTorch state_dict, one set of weights; "
                             f"drop --weights")
            G = torch_weights.load_generator(args.checkpoint, backend_name=args.backend)
        else:
            weights = args.weights if args.weights != "auto" else "ema" if load(args.checkpoint)["G_ema"] else "last"
            G, _, _ = load_models(args.checkpoint, args.backend, ema=weights == "ema")
        need = memory.sample_bytes(args.n, G.image_size, G.features, G.latent_dim, args.scale)
        xp = backend.xp()
        memory.require(need, f"sample --n {args.n} ({G.image_size}x{G.image_size}, features {G.features})",
                       "draw fewer images at once (--n)", None if xp is np else xp.cuda.runtime.memGetInfo()[0])
        w = G.parameters()[0].data
        z = np.random.default_rng(args.seed).standard_normal((args.n, G.latent_dim, 1, 1))
        if args.bn == "own":                   # the sampled weights' own statistics, not those G gathered
            from tinygan.ema import reestimate_batchnorm
            rng = np.random.default_rng(args.seed + 1)
            reestimate_batchnorm(G, [backend.asarray(rng.standard_normal((64, G.latent_dim, 1, 1)), dtype=w.dtype,
                                                     like=w) for _ in range(8)])
        with sampling(G, "running" if args.bn == "own" else args.bn):
            images = G(backend.asarray(z, dtype=w.dtype, like=w))
        save_grid(images, args.out, scale=args.scale)
    except (ValueError, RuntimeError, OSError, KeyError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    drawn_by = "the moving average of G's weights" if weights == "ema" else "G's weights"
    print(f"wrote {args.n} samples ({G.image_size}x{G.image_size}, {drawn_by}, BatchNorm: {args.bn} "
          f"statistics) to {args.out}")
    return 0


def export_parser():
    p = argparse.ArgumentParser(
        prog="pokemon.py export", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a run's G and D as PyTorch state_dicts: G to --out, D beside it as netD.pth. "
        "They are the files pytorch/examples' DCGAN takes with --netG and --netD (BatchNorm buffers "
        "included), or any twin's load_state_dict.",
        epilog="example:\n  python examples/pokemon.py export --checkpoint runs/pokemon/checkpoint.npz --out netG.pth\n"
               "  then in PyTorch: netG.load_state_dict(torch.load('netG.pth', weights_only=True))\n\n"
               ".pth needs torch; --out netG.safetensors writes netG.safetensors and netD.safetensors\n"
               "without torch (pip install safetensors).\n"
               "pytorch/examples' netD has no BatchNorm on its input layer: a --recipe d2l run's D loads\n"
               "only into a twin with one (d2l's net_D); a --upsample nearest G only into a twin with\n"
               "Upsample layers.")
    p.add_argument("--checkpoint", required=True, help="checkpoint.npz written by a training run")
    p.add_argument("--out", default="netG.pth", help="G's file, .pth/.pt or .safetensors (default netG.pth)")
    p.add_argument("--weights", choices=["last", "ema"], default="last",
                   help="G's weights of the last step (default: they pair with D, to train on in PyTorch) "
                        "or 'ema', their moving average (runs with --ema: the better sampler)")
    return p


def main_export(argv):
    from tinygan import torch_weights

    args = export_parser().parse_args(argv)
    try:
        g_path, d_path = torch_weights.export_checkpoint(args.checkpoint, args.out, ema=args.weights == "ema")
    except (ValueError, RuntimeError, OSError, KeyError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote G to {g_path} and D to {d_path}")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "sample":
        return main_sample(argv[1:])
    if argv and argv[0] == "export":
        return main_export(argv[1:])
    return main_train(argv)


if __name__ == "__main__":
    # Before NumPy loads OpenBLAS (this file imports it only inside the functions above), which
    # reads it once: its idle threads then sleep after 2^22 cycles (~1.5 ms) instead of spinning
    # ~0.1 s, so tinygan splits element-wise work over the cores (tinygan/parallel.py,
    # SHORT_SPIN). Set OPENBLAS_THREAD_TIMEOUT yourself to choose otherwise.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "22")
    sys.exit(main())
