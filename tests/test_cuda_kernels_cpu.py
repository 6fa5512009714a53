"""The CUDA kernels' arithmetic, checked on the CPU (no GPU, no CuPy): these run in CI.

Three layers of evidence, each against the one before:
  1. the NumPy twins in ``tinygan.cuda.kernels`` against the plain code — col2im's
     gather against ``im2col.col2im`` and the loop ``col2im_reference``, the Adam twin
     against ``tinygan.optim.Adam``, the BatchNorm+activation twin against the layers;
  2. the kernels' own CUDA source (``CUDA_SOURCE``), compiled with g++ for ONE thread —
     its grid-stride loops then visit every index in turn — and run through ctypes,
     against the twins: the index arithmetic that will run on the GPU, executed here;
  3. the same source compiled for the GPU by nvcc (``-ptx``, no GPU needed) where nvcc is
     installed: it is valid CUDA.
What this cannot show — that CuPy launches the kernels correctly on a real device — is
tests/test_gpu.py's job (``pytest -m gpu`` on a machine with an NVIDIA GPU).
"""
import ctypes
import itertools
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import conv_cases
from tinygan.cuda import kernels as ck
from tinygan.nn.im2col import col2im, col2im_reference, conv_out_size, deconv_out_size
from tinygan.nn.layout import col2im_chwn


HYPO = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

# (k, s, p): stride below, equal to and above the kernel, padding 0 .. beyond the kernel
# (p >= k: windows wholly in the padding, as a transposed convolution's canvas has).
KSP = [(1, 1, 0), (3, 1, 1), (2, 2, 0), (4, 2, 1), (4, 1, 0), (3, 2, 1), (4, 2, 2), (3, 3, 0),
       (2, 3, 1), (1, 2, 1), (2, 1, 3), (3, 2, 4), (4, 4, 5), (5, 2, 2)]
SHAPES = [(2, 3, 5, 5), (1, 2, 6, 4), (2, 1, 4, 7), (3, 2, 8, 8), (1, 1, 1, 1)]


CASES = conv_cases(KSP, SHAPES)


def _cols(shape, k, s, p, dtype=np.float64, seed=0):
    N, C, H, W = shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    return np.random.default_rng(seed).standard_normal((N * OH * OW, C * k * k)).astype(dtype)


def _to_cols_t(cols, shape, k, s, p):
    """Classic cols (N·OH·OW, C·K·K) → the layers' colsᵀ (C·K·K, OH·OW·N)."""
    N, C, H, W = shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    return np.ascontiguousarray(cols.reshape(N, OH, OW, C * k * k).transpose(3, 1, 2, 0).reshape(C * k * k, -1))


@st.composite
def col2im_case(draw):
    """Any k, s, p (p up to k + 2) and a size with at least one window; non-divisible sizes included."""
    k, s = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    p = draw(st.integers(0, k + 2))
    lo = max(1, k - 2 * p)                                    # smallest H with a window
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = draw(st.integers(lo, lo + 9)), draw(st.integers(lo, lo + 9))
    return (N, C, H, W), k, s, p


# ----- 1. the twins against the plain code ---------------------------------------------

@pytest.mark.parametrize("k,s,p,shape", CASES)
def test_gather_twin_equals_col2im_and_its_loop_reference(k, s, p, shape):
    cols = _cols(shape, k, s, p)
    got = ck.col2im_gather_reference(cols, shape, k, s, p)
    assert got.shape == shape and got.dtype == cols.dtype
    # the loop adds each pixel's contributors in the gather's order (oy, ox ascending): same bits
    np.testing.assert_array_equal(got, col2im_reference(cols, shape, k, s, p))
    np.testing.assert_allclose(got, col2im(cols, shape, k, s, p), rtol=1e-13, atol=1e-13)


def test_gather_rejects_columns_that_do_not_fit_before_touching_the_gpu():
    """A mis-sized colsᵀ is a one-line ValueError naming both shapes, raised before any
    allocation (so it is raised here too, where CuPy has no device or is not installed)."""
    C, H, W, N, k, s, p = 2, 8, 8, 3, 4, 2, 1
    OH = conv_out_size(H, k, s, p)
    ok = np.zeros((C * k * k, OH * OH * N), np.float32)
    for shape, layout in [((C, H, W, N), "chwn"), ((N, C, H, W), "nchw")]:
        with pytest.raises(ValueError, match=r"colsᵀ \(32, 47\) does not fit output .*expected 32 × 48"):
            ck.col2im_gather(ok[:, :-1], shape, k, s, p, layout=layout)
    with pytest.raises(ValueError, match="layout must be 'chwn' or 'nchw'"):
        ck.col2im_gather(ok, (C, H, W, N), k, s, p, layout="nhwc")


@HYPO
@given(case=col2im_case(), dtype=st.sampled_from([np.float32, np.float64]))
def test_gather_twin_equals_col2im_hypothesis(case, dtype):
    shape, k, s, p = case
    cols = _cols(shape, k, s, p, dtype)
    got = ck.col2im_gather_reference(cols, shape, k, s, p)
    assert got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, col2im_reference(cols, shape, k, s, p), rtol=tol, atol=tol)
    np.testing.assert_allclose(got, col2im(cols, shape, k, s, p), rtol=tol, atol=tol)


def test_gather_counts_every_window_that_covers_a_pixel():
    """All-ones columns: each pixel gets the number of (window, offset) pairs covering it, by brute force."""
    for (k, s, p), (H, W) in itertools.product([(4, 2, 1), (3, 2, 0), (2, 3, 1), (5, 1, 6)], [(7, 6), (8, 8)]):
        OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
        got = ck.col2im_gather_reference(np.ones((OH * OW, k * k)), (1, 1, H, W), k, s, p)[0, 0]
        rows = [sum(1 for oy in range(OH) for ky in range(k) if oy * s - p + ky == y) for y in range(H)]
        cols = [sum(1 for ox in range(OW) for kx in range(k) if ox * s - p + kx == x) for x in range(W)]
        np.testing.assert_array_equal(got, np.outer(rows, cols), err_msg=f"k={k} s={s} p={p} H={H} W={W}")


# (k, s, p, output_padding) with output_padding < stride and a non-empty output for H, W = 3, 4
_DECONV_CASES = [(k, s, p, op) for k, s, p in [(4, 2, 1), (4, 1, 0), (3, 2, 1), (5, 3, 2), (2, 2, 2)]
                 for op in (0, 1) if op < s and deconv_out_size(3, k, s, p, op) >= 1]


@pytest.mark.parametrize("k,s,p,output_padding", _DECONV_CASES)
def test_gather_is_the_transposed_convolution_canvas(k, s, p, output_padding):
    """ConvTranspose2d's col2im: canvas (O, OH + 2p, OW + 2p, N) from colsᵀ (O·K·K, H·W·N), and the fused NCHW form."""
    N, O, H, W = 2, 3, 3, 4
    OH, OW = deconv_out_size(H, k, s, p, output_padding), deconv_out_size(W, k, s, p, output_padding)
    cols_t = np.random.default_rng(1).standard_normal((O * k * k, H * W * N))
    canvas = ck.col2im_canvas_gather_reference(cols_t, (O, OH + 2 * p, OW + 2 * p, N), k, s)
    # the same canvas by the classic loop: colsᵀ back to (N·H·W, O·K·K), no padding on the canvas
    cols = cols_t.reshape(O * k * k, H, W, N).transpose(3, 1, 2, 0).reshape(N * H * W, O * k * k)
    loop = col2im_reference(cols, (N, O, OH + 2 * p, OW + 2 * p), k, s, 0)
    np.testing.assert_array_equal(canvas, loop.transpose(1, 2, 3, 0))
    # unpadded, in both layouts: the border cut away
    nchw = ck.col2im_gather_t_reference(cols_t, (N, O, OH, OW), k, s, p, layout="nchw")
    np.testing.assert_array_equal(nchw, loop[:, :, p:p + OH, p:p + OW])
    chwn = ck.col2im_gather_t_reference(cols_t, (O, OH, OW, N), k, s, p, layout="chwn")
    np.testing.assert_array_equal(chwn, canvas[:, p:p + OH, p:p + OW])


@pytest.mark.parametrize("k,s,p,shape", CASES[::3])
def test_gather_twin_equals_the_layers_col2im_chwn(k, s, p, shape):
    N, C, H, W = shape
    cols_t = _to_cols_t(_cols(shape, k, s, p), shape, k, s, p)
    canvas = np.empty((C, H + 2 * p, W + 2 * p, N))
    expected = col2im_chwn(cols_t.copy(), canvas, k, s)
    got = ck.col2im_canvas_gather_reference(cols_t, canvas.shape, k, s)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    # what the layers keep: the canvas with its border cut away, (C, H, W, N)
    unpadded = ck.col2im_gather_t_reference(cols_t, (C, H, W, N), k, s, p, layout="chwn")
    np.testing.assert_allclose(unpadded, expected[:, p:p + H, p:p + W], rtol=1e-13, atol=1e-13)


def _adam_inputs(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) * scale for scale in (0.02, 1.0, 1e-3, 1e-6)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_twin_equals_tinygan_optim_adam(dtype):
    """Five steps of Adam on two parameters: the twin and ``tinygan.optim.Adam`` agree (float64: 1e-12)."""
    from tinygan.nn import Parameter
    from tinygan.optim import Adam
    lr, b1, b2, eps = 2e-4, 0.5, 0.999, 1e-8
    params = [Parameter(np.random.default_rng(i).standard_normal(s).astype(dtype))
              for i, s in enumerate([(4, 3, 2, 2), (7,)])]
    twins = [(p.data.copy(), np.zeros_like(p.data), np.zeros_like(p.data)) for p in params]
    opt = Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    for t in range(1, 6):
        for i, p in enumerate(params):
            p.grad[...] = np.random.default_rng(100 * t + i).standard_normal(p.shape).astype(dtype) * 10.0 ** -i
        opt.step()
        for p, (tp, tm, tv) in zip(params, twins):
            ck.adam_update_reference(tp, p.grad, tm, tv, t, lr, b1, b2, eps)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    for p, m, v, (tp, tm, tv) in zip(params, opt.exp_avg, opt.exp_avg_sq, twins):
        assert tp.dtype == dtype
        np.testing.assert_allclose(tp, p.data, rtol=rtol, atol=0)
        np.testing.assert_allclose(tm, m, rtol=rtol, atol=0)
        np.testing.assert_allclose(tv, v, rtol=rtol, atol=0)


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batchnorm_act_twin_equals_the_layers(slope, dtype):
    """The twin's x̂, y and a(t) are BatchNorm2d's x_hat, and (Leaky)ReLU's output and derivative, bit for bit."""
    from tinygan.nn import BatchNorm2d, LeakyReLU, ReLU
    import tinygan
    tinygan.use("numpy", dtype)
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 2)).astype(dtype) * 2 + 0.5
    bn = BatchNorm2d(4)
    bn.weight.data[...] = np.linspace(-1.5, 2, 4)
    bn.bias.data[...] = np.linspace(-0.3, 0.4, 4)
    t = bn(x)
    mean = x.mean(axis=(0, 2, 3))
    x_hat, y, local = ck.batchnorm_act_reference(x, mean, bn.inv_std, bn.weight.data, bn.bias.data, slope)
    np.testing.assert_array_equal(x_hat, bn.x_hat)
    if slope == 1.0:
        np.testing.assert_array_equal(y, t)
        return
    act = ReLU() if slope == 0.0 else LeakyReLU(slope)
    np.testing.assert_array_equal(y, act(t))
    np.testing.assert_array_equal(local, np.where(t > 0, 1, t.dtype.type(slope)))     # a(t), the derivative


def _bn_act_args(dtype=np.float32, N=3, C=5, H=4, W=2):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((N, C, H, W)).astype(dtype)] + [rng.standard_normal(C).astype(dtype) for _ in range(4)]


def test_batchnorm_act_accepts_both_layouts_before_any_launch():
    x, *per_channel = _bn_act_args()
    memory, inner, back = ck._batchnorm_act_checked(x, *per_channel)
    assert memory is x and inner == 4 * 2 and back(memory) is x
    chwn = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)     # a layer's output
    memory, inner, back = ck._batchnorm_act_checked(chwn, *per_channel)
    assert memory.shape == (5, 4, 2, 3) and memory.flags.c_contiguous and inner == 4 * 2 * 3
    np.testing.assert_array_equal(back(memory), x)


# (what is wrong, the arguments changed from good ones, the message expected)
BAD_BN_ACT = [
    ("mean of the wrong size", {"mean": np.zeros(6, np.float32)},
     r"mean must be a contiguous \(5,\) float32 array .* got \(6,\)"),
    ("gamma (C, 1)", {"gamma": np.ones((5, 1), np.float32)}, r"gamma must be a contiguous \(5,\) float32 .* got \(5, 1\)"),
    ("inv_std float64 for float32 x", {"inv_std": np.ones(5)}, r"inv_std .* got \(5,\) float64"),
    ("beta strided", {"beta": np.zeros(10, np.float32)[::2]}, r"beta .* with strides \(8,\)"),
    ("beta a list", {"beta": [0.0] * 5}, r"beta is a builtins.list, x a numpy.ndarray"),
    ("x float16", {"x": np.zeros((3, 5, 4, 2), np.float16)},
     r"x must be a 4-d \(N, C, H, W\) float32 or float64 array, got shape \(3, 5, 4, 2\) float16"),
    ("x 3-d", {"x": np.zeros((5, 4, 2), np.float32)}, r"x must be a 4-d"),
    ("x in neither layout", {"x": np.zeros((3, 5, 8, 2), np.float32)[:, :, ::2]},
     r"x must be stored \(N, C, H, W\) or \(C, H, W, N\)"),
]


@pytest.mark.parametrize("what,change,message", BAD_BN_ACT, ids=[c[0] for c in BAD_BN_ACT])
def test_batchnorm_act_rejects_wrong_arguments_before_importing_cupy(what, change, message):
    """A kernel reads whatever memory it gets, so sizes and dtypes are checked first, in Python; the
    checks come before ``import cupy``, so they raise here (no CuPy) with NumPy arrays as a GPU would."""
    args = dict(zip(("x", "mean", "inv_std", "gamma", "beta"), _bn_act_args()), **change)
    with pytest.raises(ValueError, match=message):
        ck.batchnorm_act(args["x"], args["mean"], args["inv_std"], args["gamma"], args["beta"], 0.2)


# ----- 2. the CUDA source itself, compiled for one CPU thread ----------------------------

# What the CUDA source needs from outside, for g++: no __global__, one thread in one block
# (the grid-stride loops then run i = 0, 1, 2, … total − 1), and min/max/sqrt from the
# C++ library (CUDA has them built in). -ffp-contract=off as the GPU's --fmad=false.
CPU_PRELUDE = r"""
#include <algorithm>
#include <cmath>
using std::max; using std::min; using std::sqrt;
#define __global__
struct tg_dim3 { unsigned int x; };
static const tg_dim3 threadIdx = {0}, blockIdx = {0}, blockDim = {1}, gridDim = {1};
"""
CPU_WRAPPERS = r"""
extern "C" {
#define TG_WRAP(T, SUF) \
void col2im_gather_##SUF(const T* cols, T* out, long long total, int C, int H, int W, int N, \
                         int K, int S, int P, int OH, int OW, int nchw) \
    { col2im_gather<T>(cols, out, total, C, H, W, N, K, S, P, OH, OW, nchw); } \
void adam_update_##SUF(T* p, const T* g, T* m, T* v, long long total, double b1, double c1, \
                       double b2, double c2, double a, double sb2, double eps) \
    { adam_update<T>(p, g, m, v, total, b1, c1, b2, c2, a, sb2, eps); } \
void batchnorm_act_##SUF(const T* x, const T* mean, const T* inv_std, const T* gamma, const T* beta, \
                         T* x_hat, T* y, T* local, long long total, int C, long long inner, double slope) \
    { batchnorm_act<T>(x, mean, inv_std, gamma, beta, x_hat, y, local, total, C, inner, slope); }
TG_WRAP(float, f32)
TG_WRAP(double, f64)
}
"""


@pytest.fixture(scope="module")
def cpu_kernels(tmp_path_factory):
    """CUDA_SOURCE built as a CPU shared library (skipped where there is no g++)."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler (g++) to build the kernels' source for the CPU")
    folder = tmp_path_factory.mktemp("cuda_on_cpu")
    src, lib = folder / "kernels.cpp", folder / "kernels.so"
    src.write_text(CPU_PRELUDE + ck.CUDA_SOURCE + CPU_WRAPPERS)
    proc = subprocess.run([cxx, "-std=c++14", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-Wall",
                           "-Werror", "-Wno-unused-variable", str(src), "-o", str(lib)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"CUDA_SOURCE does not compile as C++:\n{proc.stderr}"
    return ctypes.CDLL(str(lib))


def _ptr(a):
    assert a.flags.c_contiguous
    return a.ctypes.data_as(ctypes.c_void_p)


def _suffix(dtype):
    return {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[np.dtype(dtype)]


def run_col2im_on_cpu(lib, cols_t, out, C, H, W, N, k, s, p, OH, OW, nchw):
    """Call the kernel exactly as ``cuda_kernels._col2im_launch`` does, with the same argument list."""
    f = getattr(lib, f"col2im_gather_{_suffix(out.dtype)}")
    f.restype = None
    i32 = ctypes.c_int
    f(_ptr(cols_t), _ptr(out), ctypes.c_longlong(out.size), *(i32(v) for v in (C, H, W, N, k, s, p, OH, OW, nchw)))
    return out


@HYPO
@given(case=col2im_case(), dtype=st.sampled_from([np.float32, np.float64]), nchw=st.booleans())
def test_cuda_col2im_source_equals_its_twin_hypothesis(cpu_kernels, case, dtype, nchw):
    shape, k, s, p = case
    N, C, H, W = shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols_t = _to_cols_t(_cols(shape, k, s, p, dtype), shape, k, s, p)
    out = np.full(shape if nchw else (C, H, W, N), np.nan, dtype=dtype)     # every element must be written
    run_col2im_on_cpu(cpu_kernels, cols_t, out, C, H, W, N, k, s, p, OH, OW, int(nchw))
    twin = (ck.col2im_gather_t_reference(cols_t, shape, k, s, p, layout="nchw") if nchw
            else ck.col2im_gather_t_reference(cols_t, (C, H, W, N), k, s, p, layout="chwn"))
    np.testing.assert_array_equal(out, twin)                 # same additions in the same order: same bits
    expected = col2im_reference(_cols(shape, k, s, p, dtype), shape, k, s, p)
    np.testing.assert_allclose(out if nchw else out.transpose(3, 0, 1, 2), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,s,p,shape", CASES[::2])
def test_cuda_col2im_source_fills_the_layers_canvas(cpu_kernels, k, s, p, shape):
    """The canvas form (p = 0 on a padded canvas), as the hook in ``layout.col2im_chwn`` calls it."""
    N, C, H, W = shape
    cols_t = _to_cols_t(_cols(shape, k, s, p), shape, k, s, p)
    Hp, Wp = H + 2 * p, W + 2 * p
    canvas = np.full((C, Hp, Wp, N), np.nan)
    run_col2im_on_cpu(cpu_kernels, cols_t, canvas, C, Hp, Wp, N, k, s, 0, (Hp - k) // s + 1, (Wp - k) // s + 1, 0)
    np.testing.assert_array_equal(canvas, ck.col2im_canvas_gather_reference(cols_t, canvas.shape, k, s))
    loop = col2im_reference(_cols(shape, k, s, p), shape, k, s, p)
    np.testing.assert_allclose(canvas[:, p:p + H, p:p + W].transpose(3, 0, 1, 2), loop, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_adam_source_equals_its_twin_bit_for_bit(cpu_kernels, dtype):
    lr, b1, b2, eps = 5e-3, 0.5, 0.999, 1e-8
    p, g, m, v = _adam_inputs((5, 7, 3), dtype, 0)
    m, v = m * 0.1, np.abs(v) * 1e-3
    tp, tm, tv = p.copy(), m.copy(), v.copy()
    f = getattr(cpu_kernels, f"adam_update_{_suffix(dtype)}")
    f.restype = None
    for t in (1, 2, 17):
        # the argument list of cuda_kernels.adam_update
        bias1, bias2 = 1 - b1 ** t, 1 - b2 ** t
        f(_ptr(p), _ptr(g), _ptr(m), _ptr(v), ctypes.c_longlong(p.size),
          *(ctypes.c_double(x) for x in (b1, 1 - b1, b2, 1 - b2, lr / bias1, bias2 ** 0.5, eps)))
        ck.adam_update_reference(tp, g, tm, tv, t, lr, b1, b2, eps)
        np.testing.assert_array_equal(p, tp)
        np.testing.assert_array_equal(m, tm)
        np.testing.assert_array_equal(v, tv)


@pytest.mark.parametrize("batch_innermost", [False, True])
@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_batchnorm_act_source_equals_its_twin(cpu_kernels, dtype, slope, batch_innermost):
    """x stored (N, C, H, W) (inner = H·W) or as a layer's output, (C, H, W, N) (inner = H·W·N)."""
    rng = np.random.default_rng(3)
    N, C, H, W = 3, 5, 4, 2
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    mean, inv_std, gamma, beta = (rng.standard_normal(C).astype(dtype) for _ in range(4))
    inv_std = np.abs(inv_std) + dtype(0.5)
    memory = np.ascontiguousarray(x.transpose(1, 2, 3, 0)) if batch_innermost else x
    inner = H * W * N if batch_innermost else H * W
    outs = [np.full_like(memory, np.nan) for _ in range(3)]
    f = getattr(cpu_kernels, f"batchnorm_act_{_suffix(dtype)}")
    f.restype = None
    f(*(_ptr(a) for a in (memory, mean, inv_std, gamma, beta, *outs)), ctypes.c_longlong(x.size),
      ctypes.c_int(C), ctypes.c_longlong(inner), ctypes.c_double(slope))
    for got, want in zip(outs, ck.batchnorm_act_reference(x, mean, inv_std, gamma, beta, slope)):
        np.testing.assert_array_equal(got.transpose(3, 0, 1, 2) if batch_innermost else got, want)


# ----- 3. valid CUDA: nvcc compiles every instantiation the GPU will use ----------------

def test_cuda_source_compiles_with_nvcc(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not installed: the CUDA syntax is checked on the GPU by tests/test_gpu.py")
    # taking each kernel's address instantiates it, as CuPy's name_expressions do
    keep = ", ".join(f"(const void*){k}<{t}>" for k in ck.KERNEL_NAMES for t in ("float", "double"))
    src = tmp_path / "kernels.cu"
    src.write_text(ck.CUDA_SOURCE + f"\nconst void* tinygan_instances[] = {{{keep}}};\n")
    opts = [o for o in ck.NVRTC_OPTIONS]
    proc = subprocess.run([nvcc, "-ptx", "-arch=sm_90", *opts, str(src), "-o", str(tmp_path / "kernels.ptx")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"nvcc rejected CUDA_SOURCE:\n{proc.stderr}"
    ptx = (tmp_path / "kernels.ptx").read_text()
    for k in ck.KERNEL_NAMES:
        assert k in ptx, f"{k} missing from the PTX"
