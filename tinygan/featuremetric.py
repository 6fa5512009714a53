"""Sample quality in the features of a network tinygan trains itself: KID and precision/recall.

FID and KID compare image sets in the features of ImageNet's Inception network, which
tinygan does not have (and whose 299-px photo features say little about 32-px sprites).
So tinygan trains its own feature network on the real sprites, with its own layers and
no labels, and measures how far a sample's features lie from the real ones.

Notation: N images (N, 3, 32, 32) in [-1, 1]; w the network's width; B images per step;
D the feature size; m, n the sizes of two feature sets; k the neighbour count.

The network is the DCGAN discriminator's shape (stride-2 4×4 convolutions, BatchNorm,
LeakyReLU 0.2), three blocks and a head:

    x (N, 3, 32, 32) → block 0 → (w, 16, 16) → block 1 → (2w, 8, 8) → block 2 → (4w, 4, 4) → head

Its task (``task``):

* 'contrastive' (the default; SimCLR, Chen et al. 2020): two random views of each sprite —
  flipped, moved by up to 4 px, with probability ½ its RGB channels reordered, its
  contrast and brightness jittered — go through the network and a projection head
  (global average pool, 1×1 conv, LeakyReLU, 1×1 conv: 64 numbers); ``nn.NTXentLoss``
  asks each view to find its partner among the batch's 2B − 1 other views.
* 'rotation' (Gidaris et al. 2018): each sprite at 0°, 90°, 180°, 270°, a 4-way
  ``nn.CrossEntropyLoss``; the head is a 4×4 conv to 4 logits.

The features of an image are block 1's output averaged over its 8×8 positions (D = 2w),
with BatchNorm in eval mode (an image's features do not depend on its batch), each
coordinate standardised by its mean and standard deviation over the training sprites.

Why these choices — measured on the reference grids of ``../shared/quality-reference``
with ``benchmarks/metric_check.py`` (numbers in benchmarks/METRIC_RESULTS.md). A person
orders those sets: real sprites, the 20,000-step DiffAugment samples (the only ones with
creatures), the three 5,040-step sets, the 20,000-step paper samples (colour noise),
noise. With the rotation task, KID of block 1 ranked the creatures behind two of the
5,040-step sets for every seed (and the rotation net overfits: 97% right on its training
sprites, 67–73% on held-out ones); an UNTRAINED net of this shape did the same, as SWD at
1,024 samples does: those features see pixel and patch statistics, not creatures. Of the
contrastive net's features, block 1 held the whole order for three seeds, in KID and in
precision; block 0 broke it for two seeds of three, and block 2 and all blocks together
put the dark, murky 5,040-step DiffAugment samples level with or ahead of the creatures
(the jittered contrast makes the deeper features blind to them); without colour augmentation a view is found by its
colours alone. Block 1 was picked after seeing one seed; the other two confirmed it.

What it does not show: five reference sets are few, and at 64 samples per set KID's
sampling spread is large — the creatures sit 0.6 sd from the real sprites and 1.4 sd
ahead of the 5,040-step sets; only the colour noise and the pure noise are far apart
(METRIC_RESULTS.md). Read the agreement as evidence, not proof.

KID (Bińkowski et al. 2018) is the unbiased estimate of the squared MMD between a (m, D)
and b (n, D) under the cubic polynomial kernel k(x, y) = (xᵀy / D + 1)³,

    MMD² = Σ_{i≠j} k(aᵢ, aⱼ) / m(m−1) + Σ_{i≠j} k(bᵢ, bⱼ) / n(n−1) − 2 Σ_{i,j} k(aᵢ, bⱼ) / mn

averaged over random subsets of both sets, with its standard deviation over them.
Unbiased: for two samples of one distribution its expectation is 0 at any m and n (so
it can come out below 0), which is why it compares honestly at 64 samples where FID
cannot.

Precision and recall (Kynkäänniemi et al. 2019): each real feature gets a ball out to
its k-th nearest real neighbour; precision is the share of samples inside some real ball
(how many samples look real), recall the share of real features inside some sample ball
(how much of the real variety the samples cover).
"""
import hashlib
import os

import numpy as np

from . import backend
from .download import tinygan_home
from .nn import (BatchNorm2d, Conv2d, CrossEntropyLoss, GlobalAvgPool2d, LeakyReLU, Module, NTXentLoss,
                 Sequential, sampling)
from .optim import Adam

TASKS = ("contrastive", "rotation")
FEATURE_BLOCK = 1
CACHE_VERSION = 1          # part of a cached net's file name: raise it when the training changes


class FeatureNet(Module):
    """(N, 3, 32, 32) → the task's outputs: rotation logits (N, 4) or projections (N, 64).

    ``blocks`` (three of them) give the features; ``head`` serves the training task only.
    Buffers ``feature_mean`` and ``feature_std`` (7w,) are the training sprites' statistics
    of every block's pooled features, set by ``train_feature_net``.
    """

    _buffers = ("feature_mean", "feature_std")

    def __init__(self, task="contrastive", width=32, projection=64):
        if task not in TASKS:
            raise ValueError(f"FeatureNet: task must be one of {TASKS}, got {task!r}")
        w = width
        self.task, self.width = task, width
        self.blocks = Sequential(
            Sequential(Conv2d(3, w, 4, 2, 1, bias=False), LeakyReLU(0.2)),                           # (w, 16, 16)
            Sequential(Conv2d(w, 2 * w, 4, 2, 1, bias=False), BatchNorm2d(2 * w), LeakyReLU(0.2)),     # (2w, 8, 8)
            Sequential(Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), BatchNorm2d(4 * w), LeakyReLU(0.2)))  # (4w, 4, 4)
        if task == "rotation":
            self.head = Conv2d(4 * w, 4, 4, 1, 0)                                                    # (4, 1, 1)
        else:
            self.head = Sequential(GlobalAvgPool2d(), Conv2d(4 * w, 4 * w, 1, 1, 0), LeakyReLU(0.2),
                                   Conv2d(4 * w, projection, 1, 1, 0))                               # (P, 1, 1)
        self.feature_mean = np.zeros(7 * w)
        self.feature_std = np.ones(7 * w)
        self.workspace = self.share_workspace()

    def forward(self, x):
        out = self.head(self.blocks(x))
        return out.reshape(len(x), out.shape[1])

    def backward(self, dout):
        return self.blocks.backward(self.head.backward(dout.reshape(*dout.shape, 1, 1)))

    def block_outputs(self, x):
        """[(N, w, 16, 16), (N, 2w, 8, 8), (N, 4w, 4, 4)]: the output of every block."""
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs


def he_init(net, rng):
    """Conv weights N(0, 2/fan_in) (He et al. 2015, for ReLU-like nets), biases 0; BatchNorm γ 1, β 0."""
    for m in net.modules():
        if isinstance(m, Conv2d):
            fan_in = m.weight.data[0].size
            m.weight.data[...] = rng.normal(0.0, np.sqrt(2.0 / fan_in), m.weight.data.shape)
            if m.bias is not None:
                m.bias.data[...] = 0
        elif isinstance(m, BatchNorm2d):
            m.weight.data[...], m.bias.data[...] = 1, 0
    return net


def rotations(x):
    """(N, 3, S, S) → (4N, 3, S, S) and labels (4N,): every image turned by 0°, 90°, 180°, 270°.

    Image i turned by k·90° (counter-clockwise) is row 4i + k, with label k.
    """
    turned = np.stack([np.rot90(x, k, axes=(2, 3)) for k in range(4)], axis=1)      # (N, 4, 3, S, S)
    return np.ascontiguousarray(turned.reshape(-1, *x.shape[1:])), np.tile(np.arange(4), len(x))


def augment(batch, rng, shift=4, colours=True):
    """A random view of each sprite of (B, 3, S, S) on white.

    Flipped left-right with probability ½; moved by up to ``shift`` px each way (white
    comes in at the edges); with ``colours``, its channels reordered with probability ½,
    then contrast a ~ U(0.7, 1.3) about white and brightness b ~ U(−0.2, 0.2) on the
    non-white pixels: x ← clip((x − 1)·a + 1 + b·[x < 0.99], −1, 1).
    """
    n, c, s, _ = batch.shape
    flip = rng.random(n) < 0.5
    out = np.where(flip[:, None, None, None], batch[..., ::-1], batch)
    if shift:
        padded = np.pad(out, ((0, 0), (0, 0), (shift, shift), (shift, shift)), constant_values=1.0)
        dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))
        out = np.stack([padded[i, :, dy[i]:dy[i] + s, dx[i]:dx[i] + s] for i in range(n)])
    if colours:
        reorder = rng.random(n) < 0.5
        out = np.stack([o[rng.permutation(c)] if r else o for o, r in zip(out, reorder)])
        a = rng.uniform(0.7, 1.3, (n, 1, 1, 1)).astype(out.dtype)
        b = rng.uniform(-0.2, 0.2, (n, 1, 1, 1)).astype(out.dtype)
        out = np.clip((out - 1) * a + 1 + b * (out < 0.99), -1, 1)
    return np.ascontiguousarray(out, dtype=batch.dtype)


def task_batch(x, rng, task):
    """The network's inputs for one step and the loss's target: (inputs, labels or None)."""
    if task == "rotation":
        return rotations(augment(x, rng, shift=2, colours=False))
    return np.concatenate([augment(x, rng), augment(x, rng)]), None      # rows i and i + B: one sprite


def train_feature_net(real_images, seed=0, task="contrastive", epochs=None, width=32, batch_size=None,
                      lr=2e-3, log=None):
    """Train a ``FeatureNet`` on ``real_images`` (N, 3, 32, 32) in [-1, 1]; deterministic for a seed.

    Defaults per task — contrastive: 30 epochs of B = 64 sprites (128 views), NT-Xent at
    τ = 0.2; rotation: 20 epochs of B = 16 sprites (64 rotated images), moved by up to 2 px
    and flipped. Adam, float32, on the host; the same seed gives the same weights bit for
    bit at one BLAS thread count (the benchmark runs one thread). Afterwards the training
    sprites' feature statistics are stored in the net (see ``features``).
    ``log(epoch, loss, accuracy)`` is called after each epoch if given (accuracy: of the
    rotation, or of finding the partner view).
    """
    if task not in TASKS:
        raise ValueError(f"train_feature_net: task must be one of {TASKS}, got {task!r}")
    x = backend.to_numpy(real_images).astype(np.float32)
    epochs = epochs if epochs is not None else {"contrastive": 30, "rotation": 20}[task]
    B = batch_size or {"contrastive": 64, "rotation": 16}[task]
    if len(x) < B:
        raise ValueError(f"train_feature_net: need at least batch_size = {B} images, got {len(x)}")
    rng = np.random.default_rng(seed)
    net = he_init(FeatureNet(task, width).float(), rng)
    opt = Adam(net.parameters(), lr=lr, betas=(0.9, 0.999) if task == "contrastive" else (0.5, 0.999))
    loss_fn = NTXentLoss(0.2) if task == "contrastive" else CrossEntropyLoss()
    for epoch in range(epochs):
        order, losses, hits = rng.permutation(len(x)), [], []
        for s in range(0, len(x) - B + 1, B):
            inputs, labels = task_batch(x[order[s:s + B]], rng, task)
            opt.zero_grad()
            out = net(inputs)
            losses.append(float(loss_fn(out) if labels is None else loss_fn(out, labels)))
            hits.append(_hits(loss_fn, out, labels))
            net.backward(loss_fn.backward())
            opt.step()
        if log is not None:
            log(epoch + 1, float(np.mean(losses)), float(np.mean(hits)))
    raw = pooled_features(net, x)
    net.feature_mean, net.feature_std = raw.mean(axis=0), np.maximum(raw.std(axis=0), 1e-6)
    return net


def _hits(loss_fn, out, labels):
    """The share of right answers: the rotation's argmax, or a view's most similar other view being its partner."""
    if labels is None:
        return float((loss_fn.similarities.argmax(axis=1) == loss_fn.cross_entropy.y).mean())
    return float((out.argmax(axis=1) == labels).mean())


def pooled_features(net, images, batch_size=256):
    """(N, 3, 32, 32) → (N, 7w) float64: every block's output averaged over its positions, concatenated."""
    x = backend.to_numpy(images).astype(np.float32)
    rows = []
    with sampling(net, bn="running"):
        for s in range(0, len(x), batch_size):
            outs = net.block_outputs(np.ascontiguousarray(x[s:s + batch_size]))
            rows.append(np.concatenate([a.mean(axis=(2, 3)) for a in outs], axis=1))
    return np.concatenate(rows).astype(np.float64)


def block_slice(net, block):
    """Where block ``block``'s channels sit among the 7w pooled features (w, 2w, 4w in order)."""
    start = net.width * (2 ** block - 1)
    return slice(start, start + net.width * 2 ** block)


def features(net, images, block=FEATURE_BLOCK, batch_size=256):
    """(N, 3, 32, 32) images in [-1, 1] → (N, D) float64: block ``block``'s pooled output, standardised.

    D = 2w for block 1 (the default, see the module docstring); ``block=None`` gives all
    three blocks (D = 7w).
    """
    part = slice(None) if block is None else block_slice(net, block)
    raw = pooled_features(net, images, batch_size)[:, part]
    return (raw - net.feature_mean[part]) / net.feature_std[part]


def cached_feature_net(real_images, seed=0, task="contrastive", epochs=None, folder=None, log=None):
    """``train_feature_net`` with its weights kept in ``folder`` (default ``$TINYGAN_HOME/featurenet``).

    The file name holds a SHA-1 of the images, the task, the epochs, the seed and
    ``CACHE_VERSION``, so other data or settings train anew; delete the folder to re-create
    every net. Returns the net.
    """
    x = backend.to_numpy(real_images).astype(np.float32)
    key = hashlib.sha1(x.tobytes() + f"{x.shape}{task}{epochs}{seed}v{CACHE_VERSION}".encode()).hexdigest()[:16]
    folder = folder or os.path.join(tinygan_home(), "featurenet")
    path = os.path.join(folder, f"{task}_seed{seed}_{key}.npz")
    if os.path.exists(path):
        net = FeatureNet(task).float()
        with np.load(path) as saved:
            state = dict(saved)
        net.feature_mean, net.feature_std = state["feature_mean"], state["feature_std"]
        net.load_state_dict(state)
        return net
    net = train_feature_net(x, seed=seed, task=task, epochs=epochs, log=log)
    os.makedirs(folder, exist_ok=True)
    tmp = path + f".{os.getpid()}.tmp.npz"
    np.savez(tmp, **{k: backend.to_numpy(v) for k, v in net.state_dict().items()})
    os.replace(tmp, path)
    return net


def polynomial_kernel(a, b):
    """k(x, y) = (xᵀy / D + 1)³ for every row pair: (m, D), (n, D) → (m, n)."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(a, b):
    """The unbiased MMD² of two feature sets (m, D) and (n, D) under ``polynomial_kernel``."""
    m, n = len(a), len(b)
    if m < 2 or n < 2:
        raise ValueError(f"mmd2_unbiased: need at least 2 features per set, got {m} and {n}")
    k_aa, k_bb, k_ab = polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(within_a + within_b - 2.0 * k_ab.mean())


def kid(feat_a, feat_b, subsets=100, subset_size=1000, seed=0):
    """KID: (mean, std) of ``mmd2_unbiased`` over ``subsets`` random subsets of each set.

    Each subset draws min(subset_size, len) rows of each set without replacement; when a
    set is no larger than ``subset_size`` every subset holds all of it, and the spread is
    that of the other set's subsets only.
    """
    a, b = np.asarray(feat_a, np.float64), np.asarray(feat_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"kid: need two feature sets (m, D) and (n, D), got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    size_a, size_b = min(subset_size, len(a)), min(subset_size, len(b))
    values = [mmd2_unbiased(a[rng.choice(len(a), size_a, replace=False)],
                            b[rng.choice(len(b), size_b, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def pairwise_distances(a, b):
    """Euclidean distances (m, n) between the rows of a (m, D) and b (n, D)."""
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def knn_radii(feat, k=3):
    """The distance from each row of feat (n, D) to its k-th nearest other row: (n,)."""
    if len(feat) <= k:
        raise ValueError(f"knn_radii: need more than k = {k} features, got {len(feat)}")
    return np.sort(pairwise_distances(feat, feat), axis=1)[:, k]    # column 0: the row itself


def coverage(centres, radii, points):
    """The share of ``points`` inside at least one ball (centre ``centres[i]``, radius ``radii[i]``)."""
    return float((pairwise_distances(points, centres) <= radii[None, :]).any(axis=1).mean())


def precision_recall(real_feat, fake_feat, k=3):
    """Improved precision and recall (Kynkäänniemi et al. 2019): (p, r), each in [0, 1].

    p = share of fake features inside some real k-NN ball, r = share of real features
    inside some fake k-NN ball. A smaller set has larger balls: compare sets of one size.
    """
    real, fake = np.asarray(real_feat, np.float64), np.asarray(fake_feat, np.float64)
    return coverage(real, knn_radii(real, k), fake), coverage(fake, knn_radii(fake, k), real)
