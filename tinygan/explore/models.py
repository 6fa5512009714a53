"""Loading what the experiments need from a training run's checkpoint: G, D, the images, z → G(z).

The checkpoint's meta holds 'arch' (latent_dim, features, image_size, recipe, upsample) to
rebuild the modules, and 'config' (data path, resize, background, trim, limit) to reload
exactly the images the run trained on.
"""
import numpy as np

from .. import backend, checkpoint
from ..dcgan import RECIPES, Discriminator, Generator
from ..train import preserved_buffers


def load_models(path, backend_name="numpy"):
    """(G, D, meta) from a checkpoint written by ``tinygan.train.run``, in float32 on ``backend_name``."""
    saved = checkpoint.load(path)
    meta = saved["meta"]
    arch = meta.get("arch")
    if not arch:
        raise checkpoint.CheckpointError(f"{path} has no 'arch' in its meta: not written by a training run")
    backend.use(backend_name)
    G = Generator(arch["latent_dim"], arch["features"], arch["image_size"],
                  upsample=arch.get("upsample", "transpose"))
    D = Discriminator(arch["features"], arch["image_size"],
                      batchnorm_first=RECIPES[arch.get("recipe", "paper")]["batchnorm_first"])
    G.to(backend_name)
    D.to(backend_name)
    checkpoint.restore(saved, G, D, path=path)
    return G, D, meta


def latent(meta, n, seed=0):
    """n latent points z ~ N(0, I) of the run's latent size, drawn from ``seed``: (n, Z) float64."""
    return np.random.default_rng(seed).standard_normal((n, meta["arch"]["latent_dim"]))


def generate(G, z, bn="running", batch_size=256):
    """G(z) as a NumPy (n, 3, H, W) array in [-1, 1], G unchanged. z: (n, Z).

    bn='running' (default): BatchNorm uses its running averages (G.eval()), so each image
    depends on its own z only: the same z always draws the same picture, whatever else is in
    the batch. The experiments here need that: a batch of near-identical z (a walk, a set of
    neighbours) would otherwise be normalised by its own, atypical, statistics.
    bn='batch': the statistics of the batch, as in training and the epoch grids.
    """
    xp = backend.get_array_module(*(p.data for p in G.parameters()))
    dtype = G.parameters()[0].data.dtype
    z = np.asarray(z).reshape(len(z), -1, 1, 1)
    was_training = G.training
    out = []
    with preserved_buffers(G):
        G.train(bn == "batch")
        step = len(z) if bn == "batch" else batch_size     # 'batch' statistics: one batch only
        for s in range(0, len(z), step):
            out.append(backend.to_numpy(G(xp.asarray(z[s:s + step], dtype=dtype))))
    G.train(was_training)
    return np.concatenate(out)


def load_run_images(meta, data=None, verbose=False):
    """The run's images, loaded as it loaded them: (train, heldout, files).

    train: the first ``limit`` images (all of them when the run had no --limit); heldout:
    the images after them, which G never saw (empty without --limit). ``data`` overrides the
    path saved in the checkpoint (which may be relative to where the run was started).
    """
    from ..data import load_images
    from ..train import parse_color
    cfg = meta["config"]
    loaded = load_images(data or cfg["data"], image_size=meta["arch"]["image_size"], resize=cfg["resize"],
                         background=parse_color(cfg["background"]), trim=cfg.get("trim", False),
                         verbose=verbose)
    limit = cfg.get("limit") or len(loaded.images)
    return loaded.images[:limit], loaded.images[limit:], loaded.files
