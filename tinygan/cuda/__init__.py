"""tinygan.cuda: CUDA kernels written for the GPU path, not yet wired into the layers.

    kernels.py   col2im that gathers, a one-pass Adam, BatchNorm + activation in one pass,
                 each beside the NumPy twin it must agree with

Nothing in ``tinygan.nn`` imports this package: the kernels wait for a GPU to show which
of them a step needs (docs/gpu.md). Their CUDA source is checked on the CPU by
tests/test_cuda_kernels_cpu.py (a one-thread g++ build against the twins).
"""
