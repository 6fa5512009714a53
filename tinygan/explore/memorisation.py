"""Is G copying its training set? Nearest neighbours in pixel space (DCGAN paper, section 6.1).

Notation: n queries q_i (generated samples), m pool images p_j (the training set), each
flattened to D = 3·H·W numbers in [-1, 1]; k neighbours per query.

Distance: the root-mean-square difference per number,

    d(q, p) = ‖q − p‖ / √D          (0: identical; 2: black vs white everywhere)

which ranks exactly as the Euclidean distance but reads the same at any image size.
All n·m squared distances come from one matrix product:

    ‖q − p‖² = ‖q‖² + ‖p‖² − 2·q·p

The check: a memorising G puts its samples much closer to their nearest training image
than real images that G never saw (held out) are to theirs. Similar mean distances say G
is not copying; a much smaller sample distance, or a grid of near-identical pairs, says it is.
"""
import numpy as np


def _flat(x):
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


def pairwise_distances(queries, pool):
    """(n, …) and (m, …) arrays → (n, m) RMS distances d(q_i, p_j), via ‖q‖² + ‖p‖² − 2·q·p."""
    q, p = _flat(queries), _flat(pool)
    if q.shape[1] != p.shape[1]:
        raise ValueError(f"pairwise_distances: queries have {q.shape[1]} numbers each, pool {p.shape[1]}")
    sq = (q * q).sum(1)[:, None] + (p * p).sum(1)[None, :] - 2.0 * (q @ p.T)
    return np.sqrt(np.maximum(sq, 0.0) / q.shape[1])      # rounding can make ‖q − q‖² ≈ −1e-13


def nearest_neighbours(queries, pool, k=3, exclude=None, chunk=256):
    """The k pool images closest to each query: (indices (n, k), distances (n, k)), closest first.

    exclude: None, or (n,) pool indices, one per query, that may not be chosen (leave-one-out:
    a real image's neighbours among the OTHER real images). Queries are taken ``chunk`` at a
    time so an (n, m) matrix never has to fit at once.
    """
    n, m = len(queries), len(pool)
    if not 1 <= k <= m - (exclude is not None):
        raise ValueError(f"nearest_neighbours: k must be in 1..{m - (exclude is not None)}, got {k}")
    idx, dist = np.zeros((n, k), dtype=np.int64), np.zeros((n, k))
    for s in range(0, n, chunk):
        d = pairwise_distances(queries[s:s + chunk], pool)
        if exclude is not None:
            d[np.arange(len(d)), np.asarray(exclude)[s:s + chunk]] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k]               # the k smallest, unordered
        order = np.take_along_axis(d, part, 1).argsort(axis=1, kind="stable")
        idx[s:s + chunk] = np.take_along_axis(part, order, 1)
        dist[s:s + chunk] = np.take_along_axis(d, idx[s:s + chunk], 1)
    return idx, dist


def nearest_neighbours_reference(queries, pool, k=3):
    """Brute force, one pair at a time: the slow twin the tests compare against."""
    q, p = _flat(queries), _flat(pool)
    out_i, out_d = [], []
    for qi in q:
        d = np.array([np.sqrt(((qi - pj) ** 2).mean()) for pj in p])
        order = np.argsort(d, kind="stable")[:k]
        out_i.append(order)
        out_d.append(d[order])
    return np.array(out_i), np.array(out_d)


def memorisation_report(samples, train, heldout=None, k=3, rng=None):
    """Nearest training images of each sample, and the two mean nearest-neighbour distances.

    samples (n, 3, H, W) generated; train (m, 3, H, W) what G was trained on; heldout
    (h, 3, H, W) real images G never saw. Without held-out images the baseline is
    leave-one-out: min(n, m) random training images against the rest of the training set.
    Returns a dict: indices, distances (n, k); mean_sample_nn; mean_real_nn; baseline
    ('held-out' or 'leave-one-out'); ratio = mean_sample_nn / mean_real_nn (≪ 1: copying).
    """
    idx, dist = nearest_neighbours(samples, train, k)
    if heldout is not None and len(heldout):
        _, real_d = nearest_neighbours(heldout, train, 1)
        baseline = "held-out"
    else:
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        pick = rng.choice(len(train), size=min(len(samples), len(train)), replace=False)
        _, real_d = nearest_neighbours(train[pick], train, 1, exclude=pick)
        baseline = "leave-one-out"
    mean_sample, mean_real = float(dist[:, 0].mean()), float(real_d[:, 0].mean())
    return {"indices": idx, "distances": dist, "mean_sample_nn": mean_sample, "mean_real_nn": mean_real,
            "baseline": baseline, "n_real": len(real_d), "ratio": mean_sample / mean_real}
