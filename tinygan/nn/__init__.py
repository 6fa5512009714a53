"""tinygan.nn: layers with hand-written forward and backward passes (PyTorch names and layouts)."""
from .augment import DiffAugment, RandomFlip
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh, sigmoid
from .batchnorm import BatchNorm2d
from .conv import Conv2d, ConvTranspose2d
from .im2col import col2im, conv_out_size, deconv_out_size, im2col
from .loss import BCEWithLogitsLoss, Consistency, CrossEntropyLoss, GeneratorHingeLoss, HingeLoss, LeCam, NTXentLoss
from .minibatch_std import MinibatchStd
from .module import Module, Parameter, Sequential, sampling
from .noise import InstanceNoise
from .pool import GlobalAvgPool2d
from .spectral_norm import SpectralNorm
from .topk import TopK, topk_schedule
from .upsample import Upsample

__all__ = ["Module", "Parameter", "Sequential", "sampling", "Conv2d", "ConvTranspose2d", "BatchNorm2d",
           "Upsample", "GlobalAvgPool2d", "DiffAugment", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "BCEWithLogitsLoss",
           "CrossEntropyLoss", "NTXentLoss", "sigmoid", "im2col", "col2im", "conv_out_size", "deconv_out_size",
           "SpectralNorm", "MinibatchStd", "InstanceNoise", "RandomFlip", "HingeLoss", "GeneratorHingeLoss", "LeCam",
           "Consistency", "TopK", "topk_schedule"]
