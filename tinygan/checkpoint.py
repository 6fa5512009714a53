"""Checkpoints: G, D (with BatchNorm running statistics), both Adam states and the run's state.

One ``.npz`` file (NumPy's zip of arrays, loaded with allow_pickle=False):

    G/<name>          the generator's state_dict     (e.g. G/main.0.weight)
    D/<name>          the discriminator's state_dict
    G_ema/<name>      the moving average of G's weights (``ema.EMA``), when the run keeps one
    opt_G/<name>      Adam's moments (exp_avg.i, exp_avg_sq.i)
    opt_D/<name>
    extra/<name>      any other arrays the run keeps (fixed noise, loss history, permutation)
    meta              a JSON string: format tag, architecture, epoch, step, RNG state, …

Arrays are copied to the host, so a checkpoint written on CuPy loads on NumPy and back.
The file is written atomically (``io.atomic_write``): a kill mid-save leaves the previous
checkpoint whole.
"""
import json
import zipfile

import numpy as np

from . import backend
from .backend import to_numpy
from .dcgan import build
from .io import atomic_write

FORMAT = "tinygan-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, foreign or of another architecture."""


def save(path, G, D, opt_G=None, opt_D=None, meta=None, extra=None, G_ema=None):
    arrays = {}
    for prefix, module in (("G", G), ("D", D), ("G_ema", G_ema)):
        for k, v in (module.state_dict() if module is not None else {}).items():
            arrays[f"{prefix}/{k}"] = to_numpy(v)
    for prefix, opt in (("opt_G", opt_G), ("opt_D", opt_D)):
        if opt is not None:
            for k, v in opt.state_dict().items():
                arrays[f"{prefix}/{k}"] = np.asarray(to_numpy(v))
    for k, v in (extra or {}).items():
        arrays[f"extra/{k}"] = to_numpy(v)
    header = {"format": FORMAT, "version": VERSION, **(meta or {})}
    arrays["meta"] = np.array(json.dumps(header))
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def load(path):
    """Read a checkpoint into {'G': {...}, 'D': {...}, 'G_ema': {...}, 'opt_G': {...}, 'opt_D': {...},
    'extra': {...}, 'meta': {...}}; 'G_ema' is empty when the run kept no moving average."""
    path = str(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise CheckpointError(f"checkpoint {path} is truncated or not a tinygan checkpoint "
                              f"({type(e).__name__}: {e})") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, json.JSONDecodeError):
        meta = {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a tinygan checkpoint (no '{FORMAT}' header)")
    out = {"G": {}, "D": {}, "G_ema": {}, "opt_G": {}, "opt_D": {}, "extra": {}, "meta": meta}
    for key, value in arrays.items():
        group, _, name = key.partition("/")
        if group in out and name:
            out[group][name] = value
    return out


def restore(state, G, D, opt_G=None, opt_D=None, path="checkpoint"):
    """Load a ``load``-ed checkpoint into the modules and optimizers; clear error on any mismatch."""
    for name, module in (("G", G), ("D", D)):
        try:
            module.load_state_dict(state[name])
        except ValueError as e:
            raise CheckpointError(f"{path} holds another architecture than this run's {name} "
                                  f"(check --image-size, --latent-dim, --features, --recipe): {e}") from None
    for name, opt in (("opt_G", opt_G), ("opt_D", opt_D)):
        if opt is not None:
            s = {k: (v.item() if v.ndim == 0 else v) for k, v in state[name].items()}
            try:
                opt.load_state_dict(s)
            except (ValueError, KeyError) as e:
                raise CheckpointError(f"{path}: optimizer state {name} does not fit this model: {e}") from None


def models_from_arch(arch, seed=0):
    """G and D of the architecture a checkpoint's meta['arch'] describes, as ``dcgan.build``
    initialises them from ``seed`` (with the run's seed: the models before training)."""
    return build(arch.get("recipe", "paper"), arch["latent_dim"], arch["features"], arch["image_size"],
                 seed=seed, upsample=arch.get("upsample", "transpose"),
                 d_spectral_norm=arch.get("d_spectral_norm", False), d_minibatch_std=arch.get("d_minibatch_std", False))


def load_models(path, backend_name="numpy", ema=False):
    """(G, D, meta) rebuilt from a checkpoint written by a training run, float32 on ``backend_name``.

    The architecture comes from the checkpoint's meta['arch'] (latent_dim, features,
    image_size, recipe, upsample); every caller that needs a trained model starts here.
    ``ema``: G holds the moving average of its weights (the run's ``G_ema``) instead of the
    last step's; a CheckpointError if the run kept none.
    """
    saved = load(path)
    meta = saved["meta"]
    arch = meta.get("arch")
    if not arch:
        raise CheckpointError(f"{path} has no 'arch' in its meta: not written by a training run")
    backend.use(backend_name)
    G, D = models_from_arch(arch)
    G.to(backend_name)
    D.to(backend_name)
    if ema:
        if not saved["G_ema"]:
            raise CheckpointError(f"{path} holds no moving average of G (the run had no --ema); "
                                  f"use G's own weights instead (--weights last)")
        saved = {**saved, "G": saved["G_ema"]}
    restore(saved, G, D, path=path)
    return G, D, meta
