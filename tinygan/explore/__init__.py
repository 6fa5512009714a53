"""tinygan.explore: the DCGAN paper's experiments beyond pictures, on a trained checkpoint.

    latent.py        lerp, slerp, walks between random z                      (paper 6.1)
    arithmetic.py    mean-of-three exemplars, A − B + C on z and on pixels     (paper 6.3)
    memorisation.py  nearest training images of samples; mean NN distances     (paper 6.1)
    (swd)            ProGAN's sliced Wasserstein distance: tinygan/swd.py, also used by training runs
    features.py      D as a feature extractor, a linear probe on its features  (paper 5.1)
    inspect.py       D's first-layer filters; saliency ∂D(x)/∂x                (paper 6.2)
    checkerboard.py  the overlap pattern of transposed convolutions
    models.py        load G and D from a checkpoint, z → G(z), the run's images
    pictures.py      labelled grids

``examples/explore.py`` runs each as one command that writes a PNG.
"""
from .arithmetic import concept_mean, neighbours, pixel_arithmetic, z_arithmetic
from .checkerboard import overlap_count
from .features import LinearProbe, extract_features, max_pool_to, probe_accuracy
from .inspect import filter_images, saliency, saliency_map
from .latent import interpolate, lerp, slerp, walk
from .memorisation import memorisation_report, nearest_neighbours, pairwise_distances
from .models import generate, latent, load_models, load_run_images
from ..swd import swd

__all__ = ["lerp", "slerp", "interpolate", "walk", "concept_mean", "z_arithmetic", "neighbours",
           "pixel_arithmetic", "nearest_neighbours", "pairwise_distances", "memorisation_report", "swd",
           "extract_features", "max_pool_to", "LinearProbe", "probe_accuracy", "filter_images", "saliency",
           "saliency_map", "overlap_count", "load_models", "generate", "latent", "load_run_images"]
