"""Hand-written CUDA kernels for the GPU path, each beside the NumPy twin it must agree with.

Notation (as in ``tinygan/nn/im2col.py``): N batch, C channels, (H, W) the size of the image that
col2im writes, K kernel, s stride, p padding, (OH, OW) the grid of windows; the column
matrix is colsᵀ (C·K·K, OH·OW·N) in the batch-innermost layout the layers use.

Status: not wired into any layer. No GPU has run them yet, so the layers use their
ordinary array code on CuPy too; the GPU work (docs/gpu.md) decides which of these earn a
place in ``tinygan.nn`` once a device can measure them. CuPy is imported only when a
kernel is first launched, never when this module is imported.

Three kernels, all in ``CUDA_SOURCE`` (one CUDA C++ text, compiled by CuPy's NVRTC):

``col2im_gather`` — col2im that GATHERS. The array code (``layout.col2im_chwn``) scatters:
    for every kernel offset (ky, kx) it adds a block of colsᵀ into the canvas, and
    overlapping windows add into the same pixel. A GPU thread per column entry would need
    atomic adds (slow, and the order of the additions — so the last bits — changes from
    run to run). Instead one thread owns one output pixel (n, c, y, x) and sums its own
    contributors. In padded coordinates yp = y + p, xp = x + p, window (oy, ox) covers
    pixel (yp, xp) at kernel offset

        ky = yp − oy·s,  kx = xp − ox·s,   with 0 ≤ ky < K, 0 ≤ oy < OH  (same for x)

    0 ≤ yp − oy·s < K  ⇔  (yp − K)/s < oy ≤ yp/s, so with integer division

        oy0 = max(0, yp − K + s) // s   (the first oy; max(0, ·) keeps // a floor)
        oy1 = min(OH, yp // s + 1)      (one past the last)

    and out[n, c, y, x] = Σ_{oy0 ≤ oy < oy1} Σ_{ox0 ≤ ox < ox1} colsᵀ[(c, ky, kx), (oy, ox, n)],
    summed in that order (oy outer, ox inner). At most ⌈K/s⌉ terms per axis; an empty
    range (padding rows no window reaches, rows past a non-divisible end) gives 0. No
    atomics, and the same bits on every run. Chainer's ``col2im_gpu`` is the model.
    Only the unpadded pixels are computed (the padding border, which the array code fills
    and then cuts away, never is), written in the layers' batch-innermost layout
    (C, H, W, N) or in (N, C, H, W). ``col2im_canvas_gather`` is the drop-in for
    ``layout.col2im_chwn`` (a padded canvas, p = 0). NumPy twins:
    ``col2im_gather_t_reference`` (colsᵀ, as the kernel takes it), ``col2im_gather_reference``
    (the classic layout of ``im2col.col2im``).

``adam_update`` — one pass over a parameter instead of Adam's seven array operations:
    the same formula, in the same order and the same precision as ``tinygan.optim.Adam``
    (scalars rounded to the parameter's dtype first, as NumPy does with Python floats;
    compiled with --fmad=false so no multiply-add is fused). NumPy twin:
    ``adam_update_reference``.

``batchnorm_act`` — BatchNorm's normalise-and-scale plus a (leaky) ReLU in one pass:
    x̂ = (x − μ)·inv_std,  t = x̂·γ + β,  y = t·a(t),  a(t) = 1 if t > 0 else slope
    (slope 0: ReLU, 0.2: the DCGAN's LeakyReLU, 1: no activation), also writing x̂ and
    a(t), the two caches the layers keep for backward; for x stored (N, C, H, W) or
    batch-innermost (C, H, W, N), the outputs stored the same way. NumPy twin:
    ``batchnorm_act_reference``. Not wired into the layers: that needs a fused
    BatchNorm+activation layer, worth writing only if a profile shows these passes matter.

Every kernel loops ``for (i = thread; i < total; i += all threads)`` (a grid-stride loop),
so the tests can also compile the very same source for the CPU with one thread
(tests/test_cuda_kernels_cpu.py) and check its index arithmetic without a GPU.
"""
import numpy as np

from ..nn.im2col import conv_out_size
from ..nn.layout import chwn_to_nchw

CUDA_SOURCE = r"""
// ---- col2im that gathers: one thread per output pixel, no atomics --------------------
// cols: colsT (C*K*K, OH*OW*N), element ((c*K + ky)*K + kx, (oy*OW + ox)*N + n).
// out:  (C, H, W, N) if nchw == 0, else (N, C, H, W); total = N*C*H*W; pixel (y, x) of
//       out is pixel (y + P, x + P) of the padded canvas the windows were cut from.
template <typename T>
__global__ void col2im_gather(const T* cols, T* out, long long total,
                              int C, int H, int W, int N, int K, int S, int P,
                              int OH, int OW, int nchw)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        long long n, c, y, x;
        if (nchw) {
            x = i % W;  y = (i / W) % H;  c = (i / ((long long)W * H)) % C;  n = i / ((long long)W * H * C);
        } else {
            n = i % N;  x = (i / N) % W;  y = (i / ((long long)N * W)) % H;  c = i / ((long long)N * W * H);
        }
        const int yp = (int)y + P, xp = (int)x + P;          // in the padded canvas
        const int oy0 = max(0, yp - K + S) / S, oy1 = min(OH, yp / S + 1);
        const int ox0 = max(0, xp - K + S) / S, ox1 = min(OW, xp / S + 1);
        T acc = 0;
        for (int oy = oy0; oy < oy1; ++oy) {
            const int ky = yp - oy * S;
            for (int ox = ox0; ox < ox1; ++ox) {
                const int kx = xp - ox * S;
                const long long row = (c * K + ky) * K + kx;
                acc += cols[row * ((long long)OH * OW * N) + ((long long)oy * OW + ox) * N + n];
            }
        }
        out[i] = acc;
    }
}

// ---- Adam, one pass per parameter (tinygan.optim.Adam's order of operations) ---------
template <typename T>
__global__ void adam_update(T* p, const T* g, T* m, T* v, long long total,
                            double beta1, double one_minus_beta1, double beta2, double one_minus_beta2,
                            double lr_over_bias1, double sqrt_bias2, double eps)
{
    const T b1 = (T)beta1, c1 = (T)one_minus_beta1, b2 = (T)beta2, c2 = (T)one_minus_beta2;
    const T a = (T)lr_over_bias1, sb2 = (T)sqrt_bias2, e = (T)eps;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const T gi = g[i];
        const T mi = m[i] * b1 + c1 * gi;                   // m <- b1*m + (1 - b1)*g
        const T vi = v[i] * b2 + c2 * (gi * gi);            // v <- b2*v + (1 - b2)*g*g
        const T denom = sqrt(vi) / sb2 + e;                 // sqrt(v / bias2) + eps
        p[i] = p[i] - a * mi / denom;                       // p <- p - lr/bias1 * m / denom
        m[i] = mi;
        v[i] = vi;
    }
}

// ---- BatchNorm apply + (leaky) ReLU -----------------------------------------------------
// x and the outputs in one memory layout; element i is in channel (i / inner) % C:
// inner = H*W for (N, C, H, W) memory, H*W*N for batch-innermost (C, H, W, N) memory.
template <typename T>
__global__ void batchnorm_act(const T* x, const T* mean, const T* inv_std, const T* gamma,
                              const T* beta, T* x_hat, T* y, T* local, long long total,
                              int C, long long inner, double slope)
{
    const T one = 1, sl = (T)slope;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const int c = (int)((i / inner) % C);
        const T xh = (x[i] - mean[c]) * inv_std[c];
        const T t = xh * gamma[c] + beta[c];
        const T a = t > 0 ? one : sl;
        x_hat[i] = xh;
        y[i] = t * a;
        local[i] = a;
    }
}
"""

KERNEL_NAMES = ("col2im_gather", "adam_update", "batchnorm_act")
NVRTC_OPTIONS = ("--std=c++14", "--fmad=false")
THREADS = 256


# ----- launching (CuPy only) -----------------------------------------------------------

_module = None


def _kernel(name, dtype):
    """The compiled kernel ``name<T>`` for dtype float32/float64 (compiled once, on first use)."""
    global _module
    import cupy
    if _module is None:
        exprs = [f"{k}<{t}>" for k in KERNEL_NAMES for t in ("float", "double")]
        _module = cupy.RawModule(code=CUDA_SOURCE, options=NVRTC_OPTIONS, name_expressions=exprs)
    ctype = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}.get(np.dtype(dtype))
    if ctype is None:
        raise TypeError(f"tinygan CUDA kernels take float32 or float64 arrays, got {np.dtype(dtype)}")
    return _module.get_function(f"{name}<{ctype}>")


def _launch(name, dtype, total, args):
    blocks = max(1, min(-(-total // THREADS), 65535 * 16))    # the grid-stride loop covers the rest
    _kernel(name, dtype)((blocks,), (THREADS,), args)


def _contiguous(*arrays):
    for a in arrays:
        if not a.flags.c_contiguous:
            raise ValueError(f"tinygan CUDA kernels need C-contiguous arrays, got strides {a.strides}")


def _col2im_launch(cols_t, out, C, H, W, N, k, s, p, OH, OW, nchw):
    _contiguous(cols_t, out)
    if cols_t.dtype != out.dtype or cols_t.size != C * k * k * OH * OW * N or out.size != N * C * H * W:
        raise ValueError(f"col2im_gather: colsᵀ {cols_t.shape} {cols_t.dtype} and output {out.shape} "
                         f"{out.dtype} do not fit C={C}, H={H}, W={W}, N={N}, K={k}, OH={OH}, OW={OW}")
    i32 = np.int32
    _launch("col2im_gather", out.dtype, out.size,
            (cols_t, out, np.int64(out.size), i32(C), i32(H), i32(W), i32(N), i32(k), i32(s), i32(p),
             i32(OH), i32(OW), i32(nchw)))
    return out


def col2im_gather(cols_t, shape, k, s, p, layout="chwn"):
    """col2im of colsᵀ (C·K·K, OH·OW·N) into a new unpadded image, p the padding the windows saw.

    layout 'chwn': ``shape`` = (C, H, W, N), the layers' batch-innermost layout — what
    ``col2im_chwn`` on a padded canvas followed by cutting the border away gives.
    layout 'nchw': ``shape`` = (N, C, H, W). Twin: ``col2im_gather_t_reference``.
    """
    if layout == "chwn":
        C, H, W, N = shape
    elif layout == "nchw":
        N, C, H, W = shape
    else:
        raise ValueError(f"col2im_gather: layout must be 'chwn' or 'nchw', got {layout!r}")
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    if cols_t.size != C * k * k * OH * OW * N:             # before allocating the output
        raise ValueError(f"col2im_gather: colsᵀ {cols_t.shape} does not fit output {tuple(shape)} ({layout}) "
                         f"with K={k}, S={s}, P={p}: expected {C * k * k} × {OH * OW * N} elements")
    import cupy
    out = cupy.empty(shape, dtype=cols_t.dtype)
    return _col2im_launch(cols_t, out, C, H, W, N, k, s, p, OH, OW, nchw=int(layout == "nchw"))


def col2im_canvas_gather(cols_t, canvas, k, s):
    """Drop-in for ``layout.col2im_chwn``: fill the padded canvas (C, Hp, Wp, N) from colsᵀ; returns it.

    Every canvas element is written (no zeroing needed). Twin: ``col2im_canvas_gather_reference``.
    """
    C, Hp, Wp, N = canvas.shape
    return _col2im_launch(cols_t, canvas, C, Hp, Wp, N, k, s, 0,
                          (Hp - k) // s + 1, (Wp - k) // s + 1, nchw=0)


def adam_update(p, g, m, v, step, lr, beta1, beta2, eps):
    """One Adam step on one parameter, in place on p, m, v (CuPy arrays); ``step`` is t ≥ 1.

    Twin: ``adam_update_reference``.
    """
    _contiguous(p, g, m, v)
    if not p.dtype == g.dtype == m.dtype == v.dtype:
        raise ValueError(f"adam_update: p, g, m, v must share one dtype, got {p.dtype}, {g.dtype}, {m.dtype}, {v.dtype}")
    bias1, bias2 = 1 - beta1 ** step, 1 - beta2 ** step
    _launch("adam_update", p.dtype, p.size,
            (p, g, m, v, np.int64(p.size), np.float64(beta1), np.float64(1 - beta1), np.float64(beta2),
             np.float64(1 - beta2), np.float64(lr / bias1), np.float64(bias2 ** 0.5), np.float64(eps)))
    return p, m, v


def _batchnorm_act_checked(x, mean, inv_std, gamma, beta):
    """(memory, inner, back) for ``batchnorm_act``: x's C-contiguous memory, the length of a
    channel's run in it, and the view back to (N, C, H, W); or a ValueError naming the argument."""
    if x.ndim != 4 or x.dtype not in (np.float32, np.float64):
        raise ValueError(f"batchnorm_act: x must be a 4-d (N, C, H, W) float32 or float64 array, "
                         f"got shape {x.shape} {x.dtype}")
    N, C, H, W = x.shape
    for name, a in (("mean", mean), ("inv_std", inv_std), ("gamma", gamma), ("beta", beta)):
        if type(a) is not type(x):
            raise ValueError(f"batchnorm_act: {name} is a {type(a).__module__}.{type(a).__name__}, x a "
                             f"{type(x).__module__}.{type(x).__name__}: they must live on the same device")
        if a.shape != (C,) or a.dtype != x.dtype or not a.flags.c_contiguous:
            raise ValueError(f"batchnorm_act: {name} must be a contiguous ({C},) {x.dtype} array (x is "
                             f"{x.shape} {x.dtype}), got {a.shape} {a.dtype}"
                             + ("" if a.flags.c_contiguous else f" with strides {a.strides}"))
    if x.flags.c_contiguous:
        return x, H * W, lambda a: a
    if x.transpose(1, 2, 3, 0).flags.c_contiguous:
        return x.transpose(1, 2, 3, 0), H * W * N, chwn_to_nchw
    raise ValueError(f"batchnorm_act: x must be stored (N, C, H, W) or (C, H, W, N), got strides {x.strides}")


def batchnorm_act(x, mean, inv_std, gamma, beta, slope):
    """(x̂, y, a) for x (N, C, H, W) and per-channel (C,) arrays, in one kernel. Twin: ``batchnorm_act_reference``.

    x may be stored (N, C, H, W) or batch-innermost (C, H, W, N) (a tinygan layer's output);
    the three results are stored as x is. The arguments are checked before CuPy is imported
    (a kernel reads whatever memory it is given: a wrong size or dtype would not fail, it
    would compute garbage), so a mistake is a ValueError on any machine.
    """
    memory, inner, back = _batchnorm_act_checked(x, mean, inv_std, gamma, beta)
    import cupy
    x_hat, y, local = (cupy.empty_like(memory) for _ in range(3))
    _launch("batchnorm_act", x.dtype, x.size,
            (memory, mean, inv_std, gamma, beta, x_hat, y, local, np.int64(x.size), np.int32(x.shape[1]),
             np.int64(inner), np.float64(slope)))
    return back(x_hat), back(y), back(local)


# ----- the NumPy twins: the same arithmetic, whole arrays at a time ---------------------

def _gather_rows(size, k, s, p, o):
    """For every output row y < size: its first window oy0, one-past-last oy1 (the kernel's formula)."""
    yp = np.arange(size) + p
    return np.maximum(0, yp - k + s) // s, np.minimum(o, yp // s + 1), yp


def _col2im_gather_core(cols_t, C, H, W, N, k, s, p, OH, OW):
    """colsᵀ (C·K·K, OH·OW·N) → (C, H, W, N) by the kernel's gather, in the kernel's order of additions.

    Where a thread runs ``for oy in [oy0, oy1): for ox in [ox0, ox1)``, this runs the j-th
    contributor of every pixel at once: oy = oy0 + j for j < ⌈K/s⌉, masked where oy ≥ oy1.
    """
    cols = np.asarray(cols_t).reshape(C, k, k, OH, OW, N)
    oy0, oy1, yp = _gather_rows(H, k, s, p, OH)
    ox0, ox1, xp = _gather_rows(W, k, s, p, OW)
    out = np.zeros((C, H, W, N), dtype=cols.dtype)
    J = -(-k // s)                                           # ⌈K/s⌉ contributors per axis at most
    for jy in range(J):
        oy = oy0 + jy
        ok_y = oy < oy1
        oy_c = np.where(ok_y, oy, 0)
        ky = np.where(ok_y, yp - oy * s, 0)
        for jx in range(J):
            ox = ox0 + jx
            ok_x = ox < ox1
            ox_c = np.where(ok_x, ox, 0)
            kx = np.where(ok_x, xp - ox * s, 0)
            terms = cols[:, ky[:, None], kx[None, :], oy_c[:, None], ox_c[None, :], :]    # (C, H, W, N)
            out += np.where((ok_y[:, None] & ok_x[None, :])[None, :, :, None], terms, 0)
    return out


def col2im_gather_t_reference(cols_t, shape, k, s, p, layout="chwn"):
    """NumPy twin of ``col2im_gather``: colsᵀ (C·K·K, OH·OW·N) → a new (C, H, W, N) or (N, C, H, W)."""
    C, H, W, N = shape if layout == "chwn" else (shape[1], shape[2], shape[3], shape[0])
    out = _col2im_gather_core(cols_t, C, H, W, N, k, s, p, conv_out_size(H, k, s, p), conv_out_size(W, k, s, p))
    return out if layout == "chwn" else np.ascontiguousarray(out.transpose(3, 0, 1, 2))


def col2im_canvas_gather_reference(cols_t, canvas_shape, k, s):
    """NumPy twin of ``col2im_canvas_gather``: colsᵀ (C·K·K, OH·OW·N) → a new padded canvas (C, Hp, Wp, N)."""
    C, Hp, Wp, N = canvas_shape
    return _col2im_gather_core(cols_t, C, Hp, Wp, N, k, s, 0, (Hp - k) // s + 1, (Wp - k) // s + 1)


def col2im_gather_reference(cols, x_shape, k, s, p):
    """``im2col.col2im`` by the gather: cols (N·OH·OW, C·K·K) → (N, C, H, W).

    The classic layout of ``col2im`` and ``col2im_reference``, moved to colsᵀ and gathered
    with exactly the kernel's index arithmetic (see the module docstring).
    """
    N, C, H, W = x_shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols_t = np.asarray(cols).reshape(N, OH, OW, C * k * k).transpose(3, 1, 2, 0)
    return col2im_gather_t_reference(np.ascontiguousarray(cols_t), x_shape, k, s, p, layout="nchw")


def adam_update_reference(p, g, m, v, step, lr, beta1, beta2, eps):
    """NumPy twin of ``adam_update``: one Adam step of ``tinygan.optim.Adam``, in place on p, m, v.

    Element by element, in the parameter's dtype (t = step):
        m ← m·β1 + (1 − β1)·g,   v ← v·β2 + (1 − β2)·g²
        p ← p − (lr / (1 − β1ᵗ))·m / (√v / √(1 − β2ᵗ) + eps)
    """
    dt = p.dtype.type
    bias1, bias2 = 1 - beta1 ** step, 1 - beta2 ** step
    m[...] = m * dt(beta1) + dt(1 - beta1) * g
    v[...] = v * dt(beta2) + dt(1 - beta2) * (g * g)
    denom = np.sqrt(v) / dt(bias2 ** 0.5) + dt(eps)
    p[...] = p - dt(lr / bias1) * m / denom
    return p, m, v


def batchnorm_act_reference(x, mean, inv_std, gamma, beta, slope):
    """NumPy twin of ``batchnorm_act``: x̂ = (x − μ)·inv_std, t = x̂·γ + β, a = [t > 0] + slope·[t ≤ 0], y = t·a."""
    C = x.shape[1]
    per_channel = [np.asarray(a).reshape(1, C, 1, 1) for a in (mean, inv_std, gamma, beta)]
    mean, inv_std, gamma, beta = per_channel
    x_hat = (x - mean) * inv_std
    t = x_hat * gamma + beta
    local = np.where(t > 0, x.dtype.type(1), x.dtype.type(slope))
    return x_hat, t * local, local

