"""The ten exercises, in the order of docs/tour.md, and where each one's stub and solution are."""
from dataclasses import dataclass
from pathlib import Path

from .. import dcgan, nn, optim
from ..nn.im2col import col2im, conv_out_size, im2col
from . import check_gan, check_loss_adam, checks

STUBS = Path(__file__).resolve().parent / "stubs"


@dataclass(frozen=True)
class Exercise:
    """One exercise. ``attr``: the name the learner's file defines; ``base``: the library class it
    must subclass (None for a function); ``solution``: the library's own reference code, as
    (object, the names of the functions that are the answer)."""
    name: str
    title: str
    attr: str
    base: object
    read: str
    solution: tuple
    staged: object           # the exercise's checker: .stages(impl, path) or a list of (title, fn(impl, path))

    @property
    def stub(self):
        return STUBS / f"{self.name}.py"

    @property
    def number(self):
        return [e.name for e in EXERCISES].index(self.name) + 1

    def stages(self, impl, path=None):
        """[(title, thunk)]: the check's stages for the learner's ``impl``."""
        if hasattr(self.staged, "stages"):
            return self.staged.stages(impl, path)
        return [(title, (lambda fn=fn: fn(impl, path))) for title, fn in self.staged]

    def reference(self):
        """The library's own class or function: the solution, which passes its own check in reference mode."""
        return self.solution[0]


EXERCISES = [
    Exercise("im2col", "im2col: every window of the input as one row", "im2col", None,
             "docs/tour.md stop 1; tinygan/nn/im2col.py", (im2col, ["im2col"]),
             checks.FUNCTIONS["im2col"]),
    Exercise("col2im", "col2im: add every row back into its window", "col2im", None,
             "docs/tour.md stop 3; tinygan/nn/im2col.py", (col2im, ["col2im"]),
             checks.FUNCTIONS["col2im"]),
    Exercise("conv2d", "Conv2d forward and backward", "Conv2d", nn.Conv2d,
             "docs/tour.md stops 2-3; tinygan/nn/conv.py", (nn.Conv2d, ["forward", "backward"]),
             checks.LAYERS["conv2d"]),
    Exercise("conv_transpose2d", "ConvTranspose2d forward and backward", "ConvTranspose2d", nn.ConvTranspose2d,
             "docs/tour.md stop 3; tinygan/nn/conv.py", (nn.ConvTranspose2d, ["forward", "backward"]),
             checks.LAYERS["conv_transpose2d"]),
    Exercise("batchnorm2d", "BatchNorm2d backward, through the batch statistics", "BatchNorm2d", nn.BatchNorm2d,
             "docs/tour.md stops 4-5; tinygan/nn/batchnorm.py", (nn.BatchNorm2d, ["backward"]),
             checks.LAYERS["batchnorm2d"]),
    Exercise("leaky_relu", "LeakyReLU backward", "LeakyReLU", nn.LeakyReLU,
             "tinygan/nn/activation.py", (nn.LeakyReLU, ["_f_and_derivative", "backward"]),
             checks.LAYERS["leaky_relu"]),
    Exercise("tanh", "Tanh backward", "Tanh", nn.Tanh,
             "tinygan/nn/activation.py", (nn.Tanh, ["_f_and_derivative"]), checks.LAYERS["tanh"]),
    Exercise("bce_with_logits", "BCEWithLogitsLoss forward and backward, stable at any logit", "BCEWithLogitsLoss",
             nn.BCEWithLogitsLoss, "tinygan/nn/loss.py", (nn.BCEWithLogitsLoss, ["forward", "backward"]),
             check_loss_adam.BCE_STAGES),
    Exercise("adam", "Adam's update", "Adam", optim.Adam, "tinygan/optim.py", (optim.Adam, ["step"]),
             check_loss_adam.ADAM_STAGES),
    Exercise("gan_step", "the GAN step's backward passes: loss_D's ½, D off in G's step",
             "train_step", None, "docs/tour.md stop 6; tinygan/dcgan.py", (dcgan.train_step, ["train_step"]),
             check_gan.GAN_STAGES),
]
BY_NAME = {e.name: e for e in EXERCISES}
