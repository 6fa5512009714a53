"""What the experiments need from a training run: G and D, the images it trained on, z → G(z).

``load_models`` (from ``tinygan.checkpoint``) rebuilds G and D from the checkpoint's
meta['arch']; the meta's 'config' (data path, resize, background, trim, limit) reloads
exactly the images the run trained on.
"""
import numpy as np

from .. import backend
from ..checkpoint import load_models  # noqa: F401  (re-exported: the experiments start from a checkpoint)
from ..data import load_images, parse_color
from ..nn import sampling


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
    out = []
    with sampling(G, bn):
        step = len(z) if bn == "batch" else batch_size     # 'batch' statistics: one batch only
        for s in range(0, len(z), step):
            out.append(backend.to_numpy(G(xp.asarray(z[s:s + step], dtype=dtype))))
    return np.concatenate(out)


def load_run_images(meta, data=None, verbose=False):
    """The run's images, loaded as it loaded them: (train, heldout, files).

    train: the first ``limit`` images (all of them when the run had no --limit); heldout:
    the images after them, which G never saw (empty without --limit). ``data`` overrides the
    path saved in the checkpoint (which may be relative to where the run was started).
    """
    cfg = meta["config"]
    loaded = load_images(data or cfg["data"], image_size=meta["arch"]["image_size"], resize=cfg["resize"],
                         background=parse_color(cfg["background"]), trim=cfg.get("trim", False),
                         verbose=verbose)
    limit = cfg.get("limit") or len(loaded.images)
    return loaded.images[:limit], loaded.images[limit:], loaded.files
