"""How much memory tinygan's big arrays will take, and how much the machine has, so that a size
it cannot hold is refused in one line before anything is allocated (not a MemoryError later).

    N  images at once (a batch, or all that ``sample`` draws)   S  image side
    F  features                                                 Z  latent size

The shapes are dcgan.py's: G widens z to F·2ⁿ⁻¹ channels at 4×4 and halves the channels at each
of its n ×2 steps, to F at S/2, then 3 at S; D mirrors it. Per image a forward pass keeps every
layer's output for the backward (a convolution's, its BatchNorm's and its activation's: three
arrays a block), and while the largest convolution runs, its columns (C·K²·OH·OW floats: four
times its output on a stride-2 step of G) live too. These counts are "about": tests/test_refusals.py
holds them within a fifth of the peak that tracemalloc sees grow with each further image, which is
near enough to refuse what cannot fit. The numbers are float32's.
"""
import math
import os

from .progress import format_bytes

FLOAT = 4                 # bytes: float32, tinygan's default dtype
HISTORY_PER_STEP = 200    # bytes: the 4 numbers a step logs, as Python floats in lists, then saved


class NotEnoughMemory(ValueError):
    """A size whose arrays would not fit in the memory available; the message says what to lower."""


# A container's memory limit, cgroup v2 and v1: (folder, limit file, usage file, memory.stat's
# key for the page cache the kernel can drop).
CGROUPS = (("/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file"),
           ("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))


def available():
    """Bytes this process can still take, or None where that is unknown: MemAvailable of
    /proc/meminfo (Linux; os.sysconf's free pages elsewhere), and no more than a container's
    memory limit (cgroup v2's memory.max, v1's limit_in_bytes) leaves once the page cache the
    kernel can drop is counted as free, as MemAvailable counts it (a container's usage grows to
    its limit with cached files — an install, the data set read — and that cache is reclaimable)."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            found += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            pass
    for folder, limit, used, cache in CGROUPS:
        try:
            with open(f"{folder}/{limit}") as a, open(f"{folder}/{used}") as b:
                room = int(a.read()) - int(b.read())
        except (OSError, ValueError):                # absent, or 'max': no limit
            continue
        found.append(room + _cgroup_stat(f"{folder}/memory.stat", cache))
    return min(found) if found else None


def _cgroup_stat(path, key):
    """One number of a cgroup's memory.stat (bytes), 0 where it is not there."""
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def require(need, what, hint, have=None):
    """Raise NotEnoughMemory unless ``need`` bytes fit in ``have`` (default ``available()``; no
    check when that is unknown). ``what`` says what would need them, ``hint`` what to lower."""
    have = available() if have is None else have
    if have is not None and need > have:
        raise NotEnoughMemory(f"{what} would need about {format_bytes(need)} of memory, but "
                              f"{format_bytes(max(have, 0))} is available; {hint}")


def _ladder(S, F):
    """(channels, side) of G's blocks from 4×4 to S/2: (F·2ⁿ⁻¹, 4), ..., (F, S/2); D's, reversed."""
    n = int(math.log2(S // 4))
    return [(F * 2 ** (n - 1 - i), 4 * 2 ** i) for i in range(n)]


def _generator(S, F):
    """(kept, columns): the floats of one image that G's forward keeps (three arrays a block, the
    last layer's and Tanh's), and the largest transposed convolution's columns (C_out·16·H_in·W_in)."""
    ladder = _ladder(S, F)
    kept = sum(3 * c * r * r for c, r in ladder) + 2 * 3 * S * S
    return kept, max([ladder[0][0] * 16] + [c * 16 * (r // 2) ** 2 for c, r in ladder[1:]] + [3 * 16 * (S // 2) ** 2])


def _discriminator(S, F):
    """(kept, columns) of one image in D's forward: the image, three arrays a block (two in the
    first, which has no BatchNorm), the logit; the largest convolution's columns (C_in·16·OH·OW)."""
    ladder = _ladder(S, F)[::-1]                                   # (F, S/2) first
    kept = 3 * S * S + sum((2 if i == 0 else 3) * c * r * r for i, (c, r) in enumerate(ladder)) + 1
    columns = [3 * 16 * ladder[0][1] ** 2] + [c_in * 16 * r * r for (c_in, _), (_, r) in zip(ladder, ladder[1:])]
    return kept, max(columns)


def generator_floats(S, F, Z):
    """Floats one image takes while G draws it: z, what G keeps, and its largest columns."""
    return Z + sum(_generator(S, F))


def step_floats(S, F, Z):
    """Floats one image of a batch takes in a training step: z, what G keeps and what D keeps
    (D's caches of one forward at a time: each of its three overwrites the last), and the largest
    columns once: G and D share one scratch set (``dcgan.build``), as they run one after the other."""
    (g, g_columns), (d, d_columns) = _generator(S, F), _discriminator(S, F)
    return Z + g + d + max(g_columns, d_columns)


def parameter_count(S, F, Z):
    """(G's, D's) parameters: their convolutions' weights (K = 4), and 4 numbers a BatchNorm channel."""
    widths = [c for c, _ in _ladder(S, F)]
    convs = Z * widths[0] + sum(a * b for a, b in zip(widths, widths[1:])) + widths[-1] * 3
    g = 16 * convs + 4 * sum(widths)
    d = 16 * (3 * F + sum(a * b for a, b in zip(widths, widths[1:])) + widths[0]) + 4 * sum(widths[:-1])
    return g, d


def sample_bytes(N, S, F, Z, scale=1):
    """Drawing N images at once: z as drawn (float64), G's forward, and the PNG grid (and its copy)."""
    return N * (8 * Z + FLOAT * generator_floats(S, F, Z) + 2 * 3 * (S + 2) ** 2 * scale ** 2)


def training_bytes(N, S, F, Z, steps):
    """{part: bytes} of a training run's arrays besides the data set: the models (weights, gradients,
    Adam's two moments, and the moving average of G with its own), one step's activations for a
    batch of N, and the per-step history of ``steps`` steps."""
    g, d = parameter_count(S, F, Z)
    return {"models": FLOAT * (4 * (g + d) + 2 * g),
            "activations": FLOAT * N * step_floats(S, F, Z),
            "history": HISTORY_PER_STEP * steps}


def dataset_bytes(N, S):
    """Loading N images of S×S: the decoded uint8 pixels, stacked once more, and the float32 array."""
    return N * 3 * S * S * (1 + 1 + FLOAT)
