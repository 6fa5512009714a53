"""Weights to and from PyTorch: state_dict files, name mapping, architecture from shapes.

tinygan's names and layouts are PyTorch's, so pytorch/examples' DCGAN ``netG``/``netD``
and tinygan's Generator/Discriminator share one state_dict, key for key:

    main.0.weight               ConvTranspose2d (Z, 8F, K, K)    G's first layer: 1×1 → 4×4
    main.1.weight, .bias        BatchNorm2d γ, β (8F,)
    main.1.running_mean, .running_var (8F,), .num_batches_tracked  0-d int64 (buffers)
    main.3.weight               ConvTranspose2d (8F, 4F, K, K)   and so on, every 3rd index
    main.{3n}.weight            (F, 3, K, K)                     the last layer, then Tanh

(Z latent size, F features, K = 4, n stride-2 layers; Conv2d weights are (out, in, K, K).)
pytorch/examples' netD ends with a Sigmoid, which has no weights: its state_dict is
tinygan's D's, and tinygan's D returns the logit before that Sigmoid.

Other spellings are mapped to those names (``tinygan_names``): a ``module.`` prefix
(DataParallel) or ``_orig_mod.`` (torch.compile) is dropped, a bare Sequential's
``0.weight`` becomes ``main.0.weight``, and d2l.ai's blocks map as

    d2l (G_block / D_block)                 tinygan
    i.conv2d_trans.* or i.conv2d.*      →   main.{3i}.*
    i.batch_norm.*                      →   main.{3i+1}.*
    n.weight (the last, bare layer)     →   main.{3n}.weight

(d2l's D has BatchNorm on its first block: tinygan's recipe 'd2l', ``batchnorm_first``.)

Files: ``.pth``/``.pt`` through ``torch.load(weights_only=True)`` and ``torch.save`` (needs
torch); ``.safetensors`` through ``safetensors.numpy`` (needs only the small safetensors
package, no torch, and cannot run code when read).
"""
import os
import re
from collections import OrderedDict

import numpy as np

from . import checkpoint
from .backend import to_numpy
from .dcgan import Discriminator, Generator
from .io import atomic_write, make_folder_for

TORCH_SUFFIXES = (".pth", ".pt")
SAFETENSORS_SUFFIX = ".safetensors"
SUFFIXES = TORCH_SUFFIXES + (SAFETENSORS_SUFFIX,)
_WRAPPERS = ("module.", "_orig_mod.")          # DataParallel / DistributedDataParallel, torch.compile
_D2L = re.compile(r"^(\d+)\.(conv2d_trans|conv2d|batch_norm)\.(\w+)$")
_BARE = re.compile(r"^(\d+)\.(\w+)$")
_MAIN = re.compile(r"^main\.(\d+)\.weight$")


class WeightsError(ValueError):
    """A weights file or state_dict that cannot be read, or that does not fit a DCGAN."""


# ----- optional dependencies ---------------------------------------------------------------

def _torch(purpose):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{purpose} needs PyTorch, which is not installed: pip install torch "
                          "(CPU only: pip install torch --index-url https://download.pytorch.org/whl/cpu), "
                          "or use .safetensors (pip install safetensors)") from None
    return torch


def _safetensors(purpose):
    try:
        import safetensors.numpy as st
    except ImportError:
        raise ImportError(f"{purpose} needs the safetensors package, which is not "
                          "installed: pip install safetensors (or pip install -e '.[safetensors]')") from None
    return st


def _suffix(path):
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in SUFFIXES:
        raise WeightsError(f"{path}: expected a {', '.join(SUFFIXES)} file, got {suffix or 'no suffix'!r}")
    return suffix


# ----- reading -----------------------------------------------------------------------------

def read_state_dict(path):
    """The state_dict in a ``.pth``/``.pt``/``.safetensors`` file: name → NumPy array, names as saved.

    A ``.pth`` is read with ``torch.load(path, map_location="cpu", weights_only=True)``, which
    unpickles tensors and containers only; a file holding a whole pickled model is refused.
    """
    path = os.fspath(path)
    suffix = _suffix(path)
    if not os.path.isfile(path):
        raise WeightsError(f"{path} does not exist")
    if suffix == SAFETENSORS_SUFFIX:
        st = _safetensors(f"reading {path}")
        try:
            return OrderedDict(st.load_file(path))
        except Exception as e:                      # safetensors' own error type lives in Rust
            raise WeightsError(f"{path} is not a readable .safetensors file ({_first_line(e)})") from None
    torch = _torch(f"reading {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:                          # UnpicklingError, RuntimeError, EOFError, …
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise WeightsError(f"{path} holds a pickled Python object ({found[1]}), not only tensors (a whole "
                               "model saved with torch.save(model)?), and tinygan unpickles tensors only "
                               "(weights_only=True): save model.state_dict() instead") from None
        raise WeightsError(f"{path} could not be read as a PyTorch state_dict written by torch.save "
                           f"({type(e).__name__}: {_first_line(e)})") from None
    return _to_numpy_state(obj, path, torch)


def _first_line(e):
    """The informative line of an error: torch's unpickler buries it after 'WeightsUnpickler error:'."""
    text = str(e).split("WeightsUnpickler error:")[-1].strip()
    return text.splitlines()[0] if text else type(e).__name__


def _to_numpy_state(obj, path, torch):
    """A dict of tensors → OrderedDict of NumPy arrays; WeightsError for anything else."""
    if not isinstance(obj, dict) or not obj:
        what = "an empty dict" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise WeightsError(f"{path} holds {what}, not a state_dict (a dict of name → tensor)")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        nested = [k for k in bad if isinstance(obj[k], dict)]
        hint = f"; its entries {', '.join(map(repr, nested))} are dicts: save one of them on its own" if nested else ""
        raise WeightsError(f"{path} is not a state_dict: entry {bad[0]!r} holds a {type(obj[bad[0]]).__name__}, "
                           f"not a tensor{hint}")
    state = OrderedDict()
    for k, t in obj.items():
        t = t.detach().cpu()
        if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
            t = t.float()                           # float16 / bfloat16: NumPy has no bfloat16
        state[k] = t.numpy()
    return state


def tinygan_names(state):
    """``state`` with its keys renamed to tinygan's (``main.N.…``); values unchanged.

    Drops ``module.``/``_orig_mod.`` prefixes, maps d2l.ai's block names (module docstring),
    and prefixes a bare Sequential's ``N.…`` keys with ``main.``.
    """
    def unwrap(k):
        while k.startswith(_WRAPPERS):
            k = k.split(".", 1)[1]
        return k

    keys = [unwrap(k) for k in state]
    d2l = any(_D2L.match(k) for k in keys)
    out = OrderedDict()
    for key, k in zip(state, keys):
        m, bare = _D2L.match(k), _BARE.match(k)
        if d2l and m:
            i, part, rest = int(m[1]), m[2], m[3]
            k = f"main.{3 * i + (part == 'batch_norm')}.{rest}"
        elif d2l and bare:                          # d2l's last layer: a bare Conv(Transpose)2d
            k = f"main.{3 * int(bare[1])}.{bare[2]}"
        elif not d2l and re.match(r"^\d+\.", k):    # a bare nn.Sequential's state_dict
            k = f"main.{k}"
        if k in out:
            raise WeightsError(f"two keys map to the tinygan name {k!r} (the second is {key!r})")
        out[k] = state[key]
    return out


# ----- architecture from shapes ------------------------------------------------------------

def _convs(state, who):
    """[(N, key, shape)] of the convolutions' weights, by N: every ``main.N.weight`` that is not a
    BatchNorm's (a BatchNorm keeps ``main.N.running_mean`` beside it), whatever its shape, so that
    a mis-shaped one is checked at its place instead of being taken for no layer at all."""
    if "main.0.weight" not in state:
        shown = ", ".join(list(state)[:6]) + (", …" if len(state) > 6 else "")
        raise WeightsError(f"no 'main.0.weight': not a DCGAN {who} state_dict (keys: {shown})")
    convs = sorted((int(m[1]), k, tuple(np.shape(v))) for k, v in state.items()
                   if (m := _MAIN.match(k)) and f"main.{m[1]}.running_mean" not in state)
    if len(convs) < 3:
        raise WeightsError(f"{who}: only {len(convs)} convolution weights ({', '.join(k for _, k, _ in convs)}); "
                           "a DCGAN has at least 3 (16×16 images)")
    flat = next(((k, s) for _, k, s in convs if len(s) != 4), None)
    if flat:
        raise WeightsError(f"{flat[0]} has shape {flat[1]}, but it is a convolution's weight, which has 4 dimensions "
                           f"(channels in and out, kernel height and width)")
    return convs


def _features(implied):
    """The width F that most layers' shapes imply (``implied``: one F or None per layer); among
    equally many, the last layer's. None when no layer implies a whole number."""
    votes = [f for f in implied if f]
    return max(reversed(votes), key=votes.count) if votes else None


def _per(a, b):
    """a / b when it divides into a positive whole number, else None."""
    return a // b if b and a % b == 0 and a // b > 0 else None


def _check_shapes(convs, expected, what, hint=""):
    """WeightsError naming the first convolution weight whose shape is not the ``expected`` one of
    the DCGAN described by ``what``, and the dimension that differs."""
    for (_, k, s), e in zip(convs, expected):
        if s != e:
            d = next(d for d in range(4) if s[d] != e[d])
            differs = f"{e[d]} channels, not {s[d]}" if d < 2 else f"a {e[2]}×{e[3]} kernel, not {s[2]}×{s[3]}"
            raise WeightsError(f"{k} has shape {s}, but {what} has {e} there: {differs}{hint}")


def infer_generator(state):
    """dict(latent_dim, features, image_size, channels, upsample) of the G whose (tinygan-named)
    state_dict this is. n = convolutions − 1 ×2 steps, so image_size = 4·2ⁿ; the convolutions sit
    every 3rd layer (ConvTranspose2d, BN, ReLU), every 4th with 'nearest' (Upsample first); Z from
    main.0.weight (Z, 8F, 4, 4), C from the last, and F the width most layers agree on. Every
    convolution's shape is then checked, and the first that does not fit is named."""
    convs = _convs(state, "generator")
    n, step = len(convs) - 1, convs[1][0]
    hint = " (a last layer with 1 output looks like a discriminator's: is this netD?)" if convs[-1][2][0] == 1 else ""
    if step not in (3, 4) or [i for i, _, _ in convs] != [step * i for i in range(n + 1)]:
        raise WeightsError(f"convolution weights at {', '.join(k for _, k, _ in convs)}: a DCGAN generator has one "
                           f"every 3rd layer (every 4th with nearest upsampling){hint}")
    upsample = "nearest" if step == 4 else "transpose"
    shapes = [s for _, _, s in convs]
    Z, C = shapes[0][0], shapes[-1][1 if upsample == "transpose" else 0]
    out = [s[1] if upsample == "transpose" or i == 0 else s[0] for i, s in enumerate(shapes[:-1])]   # widths
    F = _features([_per(c, 2 ** (n - 1 - i)) for i, c in enumerate(out)] +
                  [shapes[-1][0 if upsample == "transpose" else 1]])
    if F is None:
        raise WeightsError(f"the convolution weights' shapes ({', '.join(map(str, shapes))}) fit no DCGAN "
                           f"generator{hint}")
    widths = [F * 2 ** (n - 1 - i) for i in range(n)] + [C]
    if upsample == "transpose":
        expected = [(Z, widths[0], 4, 4)] + [(widths[i - 1], widths[i], 4, 4) for i in range(1, n + 1)]
    else:
        expected = [(Z, widths[0], 4, 4)] + [(widths[i], widths[i - 1], 3, 3) for i in range(1, n + 1)]
    _check_shapes(convs, expected, f"a DCGAN generator of latent size {Z}, {F} features (as most of its layers "
                                   f"say), {n} ×2 steps and {C} channels", hint)
    return dict(latent_dim=Z, features=F, image_size=4 * 2 ** n, channels=C, upsample=upsample)


def infer_discriminator(state):
    """dict(features, image_size, channels, batchnorm_first) of the D whose (tinygan-named)
    state_dict this is: main.0.weight (F, C, 4, 4); BatchNorm on the first block when main.1 is one
    (d2l's); n = convolutions − 1 stride-2 layers, so image_size = 4·2ⁿ; F the width most layers
    agree on. Every convolution's shape is then checked, and the first that does not fit is named."""
    convs = _convs(state, "discriminator")
    n = len(convs) - 1
    hint = " (is this a generator's, netG?)" if convs[-1][2][0] != 1 else ""
    shapes = [s for _, _, s in convs]
    C = shapes[0][1]
    F = _features([_per(s[0], 2 ** i) for i, s in enumerate(shapes[:-1])] + [_per(shapes[-1][1], 2 ** (n - 1))])
    if F is None:
        raise WeightsError(f"the convolution weights' shapes ({', '.join(map(str, shapes))}) fit no DCGAN "
                           f"discriminator{hint}")
    expected = [(F, C, 4, 4)] + [(F * 2 ** i, F * 2 ** (i - 1), 4, 4) for i in range(1, n)] + \
        [(1, F * 2 ** (n - 1), 4, 4)]
    _check_shapes(convs, expected, f"a DCGAN discriminator of {C} channels, {F} features (as most of its layers "
                                   f"say) and {n} stride-2 layers", hint)
    return dict(features=F, image_size=4 * 2 ** n, channels=C, batchnorm_first="main.1.running_mean" in state)


# ----- building tinygan modules ------------------------------------------------------------

def _load(module, state, arch, who, dtype, backend_name):
    module.to(backend_name, dtype=dtype)
    try:
        module.load_state_dict(state)
    except ValueError as e:
        desc = ", ".join(f"{k} {v}" for k, v in arch.items())
        raise WeightsError(f"the state_dict does not fit the DCGAN {who} its shapes suggest ({desc}): {e}") from None
    return module


def generator_from_state_dict(state, dtype=np.float32, backend_name="numpy"):
    """A tinygan Generator with these weights (any naming ``tinygan_names`` knows), in ``dtype``."""
    state = tinygan_names(state)
    arch = infer_generator(state)
    G = Generator(arch["latent_dim"], arch["features"], arch["image_size"], arch["channels"], arch["upsample"])
    return _load(G, state, arch, "generator", dtype, backend_name)


def discriminator_from_state_dict(state, dtype=np.float32, backend_name="numpy"):
    """A tinygan Discriminator with these weights (any naming ``tinygan_names`` knows), in ``dtype``."""
    state = tinygan_names(state)
    arch = infer_discriminator(state)
    D = Discriminator(arch["features"], arch["image_size"], arch["channels"], arch["batchnorm_first"])
    return _load(D, state, arch, "discriminator", dtype, backend_name)


def load_generator(path, dtype=np.float32, backend_name="numpy"):
    """A tinygan Generator from a .pth/.pt/.safetensors file, e.g. pytorch/examples' netG_epoch_24.pth."""
    return _from_file(path, generator_from_state_dict, dtype, backend_name)


def load_discriminator(path, dtype=np.float32, backend_name="numpy"):
    """A tinygan Discriminator from a .pth/.pt/.safetensors file, e.g. pytorch/examples' netD_epoch_24.pth."""
    return _from_file(path, discriminator_from_state_dict, dtype, backend_name)


def _from_file(path, from_state_dict, dtype, backend_name):
    """``from_state_dict`` of the file's state_dict; every error names the file (once)."""
    try:
        return from_state_dict(read_state_dict(path), dtype, backend_name)
    except WeightsError as e:
        raise WeightsError(e if str(e).startswith(os.fspath(path)) else f"{path}: {e}") from None


# ----- writing -----------------------------------------------------------------------------

def torch_state_dict(module):
    """``module``'s state_dict as torch tensors (host copies, dtypes kept: num_batches_tracked
    a 0-d int64), which the PyTorch twin's ``load_state_dict`` takes with strict=True."""
    torch = _torch("torch_state_dict")
    return OrderedDict((k, torch.from_numpy(np.array(to_numpy(v)))) for k, v in module.state_dict().items())


def save_weights(module, path):
    """Write ``module``'s state_dict to ``path``, atomically: ``.pth``/``.pt`` with torch.save (the
    file pytorch/examples' DCGAN takes with --netG/--netD), ``.safetensors`` without torch."""
    path = os.fspath(path)
    if _suffix(path) == SAFETENSORS_SUFFIX:
        st = _safetensors(f"writing {path}")
        data = st.save({k: np.array(to_numpy(v), order="C") for k, v in module.state_dict().items()})
        with atomic_write(path) as f:
            f.write(data)
        return path
    torch = _torch(f"writing {path}")
    state = torch_state_dict(module)
    with atomic_write(path) as f:
        torch.save(state, f)
    return path


def export_checkpoint(checkpoint_path, out_path, ema=False):
    """G of a tinygan run's checkpoint.npz to ``out_path``, D beside it as netD.pth (netD.safetensors
    for a .safetensors ``out_path``). Returns (G's path, D's path). ``ema``: G's file holds the
    moving average of its weights (runs with ``--ema``) instead of the last step's.

    pytorch/examples' netG/netD take these strictly when the run used the 'paper' recipe and
    transposed upsampling; a 'd2l' D (BatchNorm on its first block) or a 'nearest' G needs a
    twin with those layers.
    """
    out_path = os.fspath(out_path)
    suffix = _suffix(out_path)
    d_path = os.path.join(os.path.dirname(out_path), "netD" + suffix)
    if os.path.abspath(d_path) == os.path.abspath(out_path):
        raise WeightsError(f"{out_path} is where D goes (netD{suffix}, beside G's file): give G's file another name")
    if suffix in TORCH_SUFFIXES:                    # fail before loading anything
        _torch(f"writing {out_path}")
    else:
        _safetensors(f"writing {out_path}")
    make_folder_for(out_path)
    G, D, _ = checkpoint.load_models(checkpoint_path, ema=ema)
    return save_weights(G, out_path), save_weights(D, d_path)
