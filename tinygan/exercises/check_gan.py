"""The check of the GAN step's two backward passes (``train_step``).

A tiny paper DCGAN (16×16, 4 features, batch 4, float64, reference mode) takes one step with
the learner's ``train_step`` and one with the library's, from the same weights, images and
noise. Both optimizers are Adams wrapped so that they record what the step hands them: the
gradients at ``opt_D.step()`` and ``opt_G.step()``, and the order of the calls.

  reference            the order of the calls; loss_D and D's gradients (the ½ of loss_D);
                       loss_G and G's gradients (through the freshly updated D); D's .grad
                       after the step, which the G step must leave alone (D's parameter
                       gradients switched off), and D switched back on afterwards
  finite differences   D's gradients against loss_D(θ_D), G's against loss_G(θ_G) with D's
                       updated weights, each along one random direction (``check_directional``)
  PyTorch              the same two losses and gradients by torch autograd
"""
import numpy as np

from .. import gradcheck, nn, reference
from ..dcgan import build, train_step
from ..optim import Adam
from . import oracle
from .verdict import Fail, Skipped, call, close, diagnose, expect, worst

HALF = ("the ½ of loss_D is missing: loss_D = ½·[ℓ(D(x), 1) + ℓ(D(G(z)), 0)], so each of D's two backward "
        "passes takes loss_fn.backward(0.5), and loss_D is the mean of the two losses")
FROZEN = ("D's parameter gradients were not switched off in the G step: loss_G's backward through D added into "
          "D's .grad; call D.requires_grad_(False) before it and D.requires_grad_(True) after (in a finally:)")
N, LATENT = 4, 8


class RecordingAdam:
    """Adam(lr 1e-3, β1 0.5) that records the gradients and weights it is handed at ``step()``."""

    def __init__(self, who, params, log):
        self.opt, self.who, self.log = Adam(params, lr=1e-3, betas=(0.5, 0.999)), who, log
        self.params, self.grads = self.opt.params, None

    def zero_grad(self):
        self.log.append(f"{self.who}.zero_grad")
        self.opt.zero_grad()

    def step(self):
        self.log.append(f"{self.who}.step")
        self.grads = [p.grad.copy() for p in self.params]
        self.opt.step()


def models():
    """The tiny paper DCGAN in float64, the same weights every call."""
    G, D = build("paper", latent_dim=LATENT, features=4, image_size=16, seed=0)
    return G.double(), D.double()


def batch():
    rng = np.random.default_rng(5)
    return rng.uniform(-1, 1, (N, 3, 16, 16)), rng.standard_normal((N, LATENT, 1, 1))


def one_step(step_fn, path=None, what="gan_step"):
    """One step of ``step_fn`` on fresh models: what it returned, recorded and left behind."""
    G, D = models()
    log = []
    opt_G, opt_D = RecordingAdam("opt_G", G.parameters(), log), RecordingAdam("opt_D", D.parameters(), log)
    real, z = batch()
    with reference.mode(), np.errstate(all="ignore"):
        out = call(what, path, step_fn, G, D, opt_G, opt_D, real, z, nn.BCEWithLogitsLoss())
    if not (isinstance(out, tuple) and len(out) == 2):
        raise Fail(f"FAIL {what}: train_step returned {type(out).__name__}, expected (loss_D, loss_G)", None, "return")
    return dict(loss_D=np.asarray(out[0], np.float64), loss_G=np.asarray(out[1], np.float64), log=log,
                d_grads=opt_D.grads, g_grads=opt_G.grads, D=D, names_D=[n for n, _ in D.named_parameters()],
                names_G=[n for n, _ in G.named_parameters()], d_after=[p.grad.copy() for p in D.parameters()],
                d_on=all(p.requires_grad for p in D.parameters()))


def _order(mine):
    steps = [e for e in mine["log"] if e.endswith(".step")]
    if steps != ["opt_D.step", "opt_G.step"]:
        raise Fail(f"FAIL gan_step: the optimizers' steps ran as {steps or 'never'}, expected opt_D.step() once, "
                   "then opt_G.step() once", "D's update, then G's: zero_grad, the backward passes, step, for each",
                   "order")


def against_reference(impl, path):
    mine, ref = one_step(impl, path), one_step(train_step, what="the library's train_step")
    _order(mine)
    expect("gan_step", "loss_D", mine["loss_D"], ref["loss_D"], mistakes=[("half", 2 * ref["loss_D"], HALF)])
    for name, got, want in zip(mine["names_D"], mine["d_grads"], ref["d_grads"]):
        expect("gan_step", f"D's gradient {name} at opt_D.step()", got, want, mistakes=[("half", 2 * want, HALF)])
    expect("gan_step", "loss_G", mine["loss_G"], ref["loss_G"])
    for name, got, want in zip(mine["names_G"], mine["g_grads"], ref["g_grads"]):
        expect("gan_step", f"G's gradient {name} at opt_G.step()", got, want)
    for name, after, at_step, want in zip(mine["names_D"], mine["d_after"], mine["d_grads"], ref["d_after"]):
        if not close(after, want) and not close(after, at_step):
            index, yours, right = worst(after, at_step)
            raise Fail(f"FAIL gan_step: D's .grad of {name} changed during the G step: worst element {index}: "
                       f"yours {yours:+.6e} after the step, {right:+.6e} at opt_D.step()", FROZEN, "frozen")
        expect("gan_step", f"D's .grad of {name} after the step", after, want)
    if not mine["d_on"]:
        raise Fail("FAIL gan_step: D's parameters still have requires_grad False after the step",
                   "switch them back on after the G step (D.requires_grad_(True), in a finally:), or D's next "
                   "step adds no gradients", "frozen-after")
    return "the losses, D's and G's gradients, D's .grad left by the G step"


def _loss_D(G, D, real, z):
    bce, ones, zeros = nn.BCEWithLogitsLoss(), np.ones(N), np.zeros(N)
    with reference.mode():
        return 0.5 * (float(bce(D(real), ones)) + float(bce(D(G(z)), zeros)))


def _loss_G(G, D, real, z):
    with reference.mode():
        return float(nn.BCEWithLogitsLoss()(D(G(z)), np.ones(N)))


def finite_differences(impl, path):
    mine = one_step(impl, path)
    _order(mine)
    real, z = batch()
    G, D = models()
    G1, D1 = models()
    D1.load_state_dict(mine["D"].state_dict())                  # D as the G step saw it: after its update
    checks = [("D's gradient of loss_D", lambda: _loss_D(G, D, real, z), D, mine["d_grads"], [("half", 2, HALF)]),
              ("G's gradient of loss_G", lambda: _loss_G(G1, D1, real, z), G1, mine["g_grads"], [])]
    for what, f, model, grads, known in checks:
        report = gradcheck.check_directional(f, [p.data for p in model.parameters()], grads, raise_on_fail=False)
        t = report.tensors[0]
        if not t.ok:
            mistakes = [(k, factor * np.array([t.numeric]), words) for k, factor, words in known]
            key, why = diagnose(np.array([t.analytic]), np.array([t.numeric]), mistakes)
            raise Fail(f"FAIL gan_step: {what} along a random direction: yours {t.analytic:+.6e}, finite "
                       f"differences {t.numeric:+.6e}", why, key)
    return "D's gradients of loss_D and G's of loss_G, each along a random direction"


def pytorch(impl, path):
    torch = oracle.torch_or_none()
    if torch is None:
        return Skipped("PyTorch is not installed")
    mine = one_step(impl, path)
    real, z = (oracle.tensor(torch, a) for a in batch())
    G, D = models()
    G_t, D_t, D1_t = (oracle.sequential(torch, m.main) for m in (G, D, mine["D"]))
    bce, src = torch.nn.functional.binary_cross_entropy_with_logits, f"PyTorch {torch.__version__}"
    ones, zeros = torch.ones(N, dtype=torch.float64), torch.zeros(N, dtype=torch.float64)
    loss_D = 0.5 * (bce(D_t(real).reshape(N), ones) + bce(D_t(G_t(z).detach()).reshape(N), zeros))
    loss_D.backward()
    G_t.zero_grad()
    loss_G = bce(D1_t(G_t(z)).reshape(N), ones)
    loss_G.backward()
    expect("gan_step", "loss_D", mine["loss_D"], loss_D.detach().numpy(), source=src,
           mistakes=[("half", 2 * loss_D.detach().numpy(), HALF)])
    for name, got, (_, p) in zip(mine["names_D"], mine["d_grads"], D_t.named_parameters()):
        expect("gan_step", f"D's gradient {name}", got, p.grad.numpy(), source=src,
               mistakes=[("half", 2 * p.grad.numpy(), HALF)])
    expect("gan_step", "loss_G", mine["loss_G"], loss_G.detach().numpy(), source=src)
    for name, got, (_, p) in zip(mine["names_G"], mine["g_grads"], G_t.named_parameters()):
        expect("gan_step", f"G's gradient {name}", got, p.grad.numpy(), source=src)
    return f"torch {torch.__version__}: both losses, D's and G's gradients"


GAN_STAGES = [("against the library's reference", against_reference),
              ("finite differences", finite_differences), ("PyTorch", pytorch)]
