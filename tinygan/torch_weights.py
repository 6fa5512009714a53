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
from .io import atomic_write

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
    """[(key, shape)] of the 4-D ``main.N.weight`` arrays, by N; main.0.weight must be one."""
    if "main.0.weight" not in state:
        shown = ", ".join(list(state)[:6]) + (", …" if len(state) > 6 else "")
        raise WeightsError(f"no 'main.0.weight': not a DCGAN {who} state_dict (keys: {shown})")
    convs = sorted(((int(m[1]), k, tuple(np.shape(v))) for k, v in state.items() if (m := _MAIN.match(k))
                    and np.ndim(v) == 4))
    if not convs or convs[0][1] != "main.0.weight":
        raise WeightsError(f"main.0.weight has shape {tuple(np.shape(state['main.0.weight']))}: a DCGAN "
                           f"{who}'s first layer is a convolution with a 4-D weight")
    if len(convs) < 3:
        raise WeightsError(f"{who}: only {len(convs)} convolution weights ({', '.join(k for _, k, _ in convs)}); "
                           "a DCGAN has at least 3 (16×16 images)")
    return [(k, s) for _, k, s in convs]


def infer_generator(state):
    """dict(latent_dim, features, image_size, channels, upsample) of the G whose (tinygan-named)
    state_dict this is. Z = main.0.weight.shape[0]; n = convolutions − 1 ×2 steps, so
    image_size = 4·2ⁿ; F from the last layer ((F, C, 4, 4) transposed, (C, F, 3, 3) for 'nearest')."""
    convs = _convs(state, "generator")
    (k0, s0), (k_last, s_last) = convs[0], convs[-1]
    if s0[2:] != (4, 4):
        raise WeightsError(f"{k0} has shape {s0}: a DCGAN generator's first layer is a 4×4 "
                           "ConvTranspose2d (Z, 8F, 4, 4)")
    upsample = "nearest" if any(s[2:] == (3, 3) for _, s in convs[1:]) else "transpose"
    features, channels = (s_last[1], s_last[0]) if upsample == "nearest" else (s_last[0], s_last[1])
    n = len(convs) - 1
    if s0[1] != features * 2 ** (n - 1):
        hint = " (a last layer with 1 output looks like a discriminator's: is this netD?)" if s_last[0] == 1 else ""
        raise WeightsError(f"{k0} has shape {s0}, but a DCGAN generator whose last layer {k_last} has shape "
                           f"{s_last} ({features} features, {n} ×2 steps) starts with {features * 2 ** (n - 1)} "
                           f"channels, not {s0[1]}{hint}")
    return dict(latent_dim=s0[0], features=features, image_size=4 * 2 ** n, channels=channels, upsample=upsample)


def infer_discriminator(state):
    """dict(features, image_size, channels, batchnorm_first) of the D whose (tinygan-named)
    state_dict this is: main.0.weight (F, C, 4, 4); BatchNorm on the first block when main.1.weight
    exists (d2l's); n = convolutions − 1 stride-2 layers, so image_size = 4·2ⁿ."""
    convs = _convs(state, "discriminator")
    (k0, s0), (k_last, s_last) = convs[0], convs[-1]
    n = len(convs) - 1
    if s0[2:] != (4, 4):
        raise WeightsError(f"{k0} has shape {s0}: a DCGAN discriminator's first layer is a 4×4 Conv2d (F, C, 4, 4)")
    expected = (1, s0[0] * 2 ** (n - 1), 4, 4)
    if s_last != expected:
        hint = " (is this a generator's, netG?)" if s_last[0] != 1 else ""
        raise WeightsError(f"{k_last} has shape {s_last}, but a DCGAN discriminator whose first layer {k0} "
                           f"has {s0[0]} features ends with {expected} after {n} stride-2 layers{hint}")
    return dict(features=s0[0], image_size=4 * 2 ** n, channels=s0[1], batchnorm_first="main.1.weight" in state)


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
    G, D, _ = checkpoint.load_models(checkpoint_path, ema=ema)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    return save_weights(G, out_path), save_weights(D, d_path)
