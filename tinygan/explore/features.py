"""The discriminator as a feature extractor, and a linear probe on its features (DCGAN paper, section 5.1).

The paper trains a DCGAN on ImageNet, takes its discriminator's convolutional features from
every layer, max-pools each to a 4×4 grid, concatenates them (28,672 numbers per image) and
trains a linear L2-SVM on CIFAR-10 labels: 82.8%, better than K-means features. Against
"random filters" of the same architecture it shows the learned features are what helps.

Notation: N images (N, 3, S, S); layer l of D gives (N, C_l, H_l, W_l) after its
LeakyReLU; the feature vector has F = Σ_l C_l·4·4 numbers; K classes.

    features(x) = concat_l  maxpool_{H_l/4 × W_l/4}(a_l(x)).reshape(N, C_l·16)        (N, F)

For S = 32 and features 64: a_l are (64, 16, 16), (128, 8, 8), (256, 4, 4) → F = 7,168.
D runs in eval mode (BatchNorm uses its running statistics), so an image's features do not
depend on the batch it came in.

The probe is a linear map written with tinygan's own pieces: a fully connected layer is a
1×1 convolution of the features seen as an (N, F, 1, 1) image — Conv2d(F, K, 1) — trained
with BCEWithLogitsLoss one-vs-rest (K independent logistic regressions, one per class, on
one-hot targets), L2 weight decay and Adam; the predicted class is argmax of the K logits.
"""
import numpy as np

from .. import backend
from ..nn import BCEWithLogitsLoss, Conv2d, LeakyReLU, sampling
from ..optim import Adam

SKLEARN_MISSING = ("the features experiment's digits set needs scikit-learn: "
                   "pip install -e '.[explore]'")


def max_pool_to(a, size=4):
    """(N, C, H, W) → (N, C, size, size): the max over each (H/size)×(W/size) block (H, W multiples of size)."""
    N, C, H, W = a.shape
    if H % size or W % size:
        raise ValueError(f"max_pool_to: {H}x{W} is not a multiple of {size}x{size}")
    return a.reshape(N, C, size, H // size, size, W // size).max(axis=(3, 5))


def layer_activations(D, x):
    """The output of every LeakyReLU of D (one per conv block), in order: a list of (N, C_l, H_l, W_l)."""
    outs = []
    h = x
    for layer in D.main:
        h = layer(h)
        if isinstance(layer, LeakyReLU):
            outs.append(h)
    return outs


def extract_features(D, images, size=4, batch_size=128):
    """(N, 3, S, S) images → (N, F) float32 NumPy features: every block max-pooled to size×size, concatenated.

    D is run in eval mode and put back in the mode it was in; its parameters are untouched.
    """
    xp = backend.get_array_module(*(p.data for p in D.parameters()))
    dtype = D.parameters()[0].data.dtype
    with sampling(D, bn="running"):
        rows = []
        for s in range(0, len(images), batch_size):
            x = xp.asarray(backend.to_numpy(images[s:s + batch_size]), dtype=dtype)
            acts = layer_activations(D, x)
            rows.append(np.concatenate([backend.to_numpy(max_pool_to(a, size)).reshape(len(x), -1)
                                        for a in acts], axis=1))
    return np.concatenate(rows).astype(np.float32)


def standardise(train, *others):
    """Scale every feature to mean 0, std 1 with the TRAINING set's statistics; apply the same to ``others``."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return [(a - mean) / std for a in (train, *others)]


class LinearProbe:
    """logits = W·f + b for features f (F,), as Conv2d(F, K, kernel 1) on (N, F, 1, 1); K classes.

    fit: minibatch Adam on mean BCE-with-logits against one-hot targets, plus weight decay
    λ·‖W‖²/2 (its gradient λ·W is added to W's gradient before each step).
    """

    def __init__(self, n_features, n_classes, seed=0):
        self.n_classes = n_classes
        self.layer = Conv2d(n_features, n_classes, 1).to("numpy")     # on the host, as the features are
        rng = np.random.default_rng(seed)
        self.layer.weight.data[...] = 0.01 * rng.standard_normal(self.layer.weight.shape)
        self.layer.bias.data[...] = 0
        self.loss_fn = BCEWithLogitsLoss()

    def logits(self, features):
        dtype = self.layer.weight.data.dtype
        f = np.asarray(features, dtype=dtype)
        return self.layer(f.reshape(len(f), -1, 1, 1)).reshape(len(f), self.n_classes)

    def fit(self, features, labels, epochs=30, batch_size=128, lr=1e-3, weight_decay=1e-3, seed=0):
        """Train on (N, F) features and (N,) integer labels in 0..K−1; returns the per-epoch mean loss."""
        labels = np.asarray(labels)
        onehot = np.eye(self.n_classes, dtype=self.layer.weight.data.dtype)[labels]
        opt = Adam(self.layer.parameters(), lr=lr)
        rng = np.random.default_rng(seed)
        history = []
        for _ in range(epochs):
            order, total = rng.permutation(len(labels)), 0.0
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                opt.zero_grad()
                logits = self.logits(features[idx])
                loss = self.loss_fn(logits, onehot[idx])
                self.layer.backward(self.loss_fn.backward().reshape(len(idx), self.n_classes, 1, 1))
                self.layer.weight.grad += weight_decay * self.layer.weight.data
                opt.step()
                total += float(loss) * len(idx)
            history.append(total / len(labels))
        return history

    def predict(self, features):
        return np.asarray(backend.to_numpy(self.logits(features))).argmax(axis=1)

    def accuracy(self, features, labels):
        return float((self.predict(features) == np.asarray(labels)).mean())


def probe_accuracy(train_features, train_labels, test_features, test_labels, n_classes=None, **fit_kwargs):
    """Standardise with the training statistics, fit a ``LinearProbe``, return its TEST accuracy."""
    n_classes = n_classes or int(max(train_labels.max(), test_labels.max())) + 1
    tr, te = standardise(train_features, test_features)
    probe = LinearProbe(tr.shape[1], n_classes)
    probe.fit(tr, train_labels, **fit_kwargs)
    return probe.accuracy(te, test_labels)


def load_digits_images(image_size=32, invert=True):
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, labels 0–9), no download.

    Upscaled with bilinear interpolation to image_size, grey copied to RGB, in [-1, 1].
    invert=True draws dark strokes on white, like the sprites' outlines on their white
    background. Returns (images (N, 3, S, S) float32, labels (N,) int). Raises ImportError
    with the install command when scikit-learn is absent.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(SKLEARN_MISSING) from None
    from PIL import Image
    digits = load_digits()
    out = np.empty((len(digits.images), 3, image_size, image_size), dtype=np.float32)
    for i, d in enumerate(digits.images):                       # values 0..16, 16 = ink
        big = np.asarray(Image.fromarray((d / 16.0).astype(np.float32))
                         .resize((image_size, image_size), Image.BILINEAR))
        v = 1.0 - 2.0 * np.clip(big, 0, 1) if invert else 2.0 * np.clip(big, 0, 1) - 1.0
        out[i] = v[None]
    return out, digits.target.astype(np.int64)
