"""Weights between tinygan and PyTorch: export, import, d2l's names, errors, the CLI.

The PyTorch twins are benchmarks/torch_dcgan.py's Generator and Discriminator (the layer
sequence of pytorch/examples' netG and netD) and, for d2l.ai's names, its G_block/D_block
nets written out below. Every comparison is float64, from the same z or images.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[crosscheck]'")

from tinygan import checkpoint  # noqa: E402
from tinygan import torch_weights as tw  # noqa: E402
from tinygan.dcgan import Discriminator, Generator, build  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "examples"))
import pokemon  # noqa: E402
from conftest import make_sprites  # noqa: E402
from torch_dcgan import Discriminator as TorchD  # noqa: E402
from torch_dcgan import Generator as TorchG  # noqa: E402

torch.set_num_threads(1)
Z, F, SIZE = 8, 4, 16          # latent size, features, image side: G has 3 layers, D 3 convolutions
TOL = dict(rtol=1e-12, atol=1e-12)


def noise(n=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, Z, 1, 1))


def images(n=5, seed=1):
    return np.random.default_rng(seed).standard_normal((n, 3, SIZE, SIZE))


def ours_out(model, x, train):
    model.train(train)
    return model(x)


def theirs_out(model, x, train):
    model.train(train)
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def trained_tinygan(recipe="paper"):
    """tinygan G and D in float64, weights (BatchNorm's near 1) and running statistics off their defaults."""
    G, D = build(recipe, Z, F, SIZE, seed=3)
    rng = np.random.default_rng(3)
    for p in G.double().parameters() + D.double().parameters():
        p.data[...] = (p.data.ndim == 1) + 0.2 * rng.standard_normal(p.shape)
    for i in range(3):
        D(G(noise(6, seed=10 + i)))
    return G, D


def randomised(twin, inputs, seed=0):
    """``twin`` in float64 with non-default weights (BatchNorm's near 1) and running statistics
    from 3 batches of shape ``inputs``."""
    gen = torch.Generator().manual_seed(seed)
    twin.double()
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_((p.ndim == 1) + 0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
        for _ in range(3):
            twin(2 * torch.randn(inputs, generator=gen, dtype=torch.float64) + 0.5)
    return twin


G_IN, D_IN = (6, Z, 1, 1), (6, 3, SIZE, SIZE)


# ----- tinygan → PyTorch ---------------------------------------------------------------------

@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_twin_loaded_from_tinygans_export_gives_the_same_images_and_logits(tmp_path, train):
    G, D = trained_tinygan()
    tw.save_weights(G, tmp_path / "netG.pth")
    tw.save_weights(D, tmp_path / "netD.pth")
    netG, netD = TorchG(Z, F, SIZE).double(), TorchD(F, SIZE).double()
    sd_G = torch.load(tmp_path / "netG.pth", weights_only=True)
    netG.load_state_dict(sd_G, strict=True)
    netD.load_state_dict(torch.load(tmp_path / "netD.pth", weights_only=True), strict=True)
    assert sd_G["main.1.num_batches_tracked"].dtype == torch.int64 and sd_G["main.1.num_batches_tracked"].ndim == 0
    assert int(sd_G["main.1.num_batches_tracked"]) == 3
    np.testing.assert_array_equal(netG.main[4].running_var.numpy(), G.main[4].running_var)

    z, x = noise(), images()
    img = ours_out(G, z, train)
    assert img.std() > 0.05                                # not a blank picture that would match anything
    np.testing.assert_allclose(theirs_out(netG, z, train), img, **TOL)
    np.testing.assert_allclose(theirs_out(netD, x, train), ours_out(D, x, train), **TOL)
    if train:                                              # both moved their running averages alike
        np.testing.assert_allclose(netG.main[1].running_mean.numpy(), G.main[1].running_mean, **TOL)
        np.testing.assert_allclose(netD.main[3].running_var.numpy(), D.main[3].running_var, **TOL)


def test_torch_state_dict_has_every_key_of_the_twin_in_order():
    G, D = trained_tinygan()
    for ours, twin in ((G, TorchG(Z, F, SIZE)), (D, TorchD(F, SIZE))):
        sd = tw.torch_state_dict(ours)
        assert list(sd) == list(twin.state_dict())
        assert all(isinstance(v, torch.Tensor) for v in sd.values())


# ----- PyTorch → tinygan ---------------------------------------------------------------------

@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_tinygan_loaded_from_the_twins_pth_gives_the_same_images_and_logits(tmp_path, train):
    netG, netD = randomised(TorchG(Z, F, SIZE), G_IN, 1), randomised(TorchD(F, SIZE), D_IN, 2)
    torch.save(netG.state_dict(), tmp_path / "netG_epoch_24.pth")
    torch.save(netD.state_dict(), tmp_path / "netD_epoch_24.pth")
    G = tw.load_generator(tmp_path / "netG_epoch_24.pth", dtype=np.float64)
    D = tw.load_discriminator(tmp_path / "netD_epoch_24.pth", dtype=np.float64)
    assert (G.latent_dim, G.features, G.image_size) == (Z, F, SIZE)
    assert int(G.main[1].num_batches_tracked) == 3 and G.main[0].weight.data.dtype == np.float64
    z, x = noise(seed=5), images(seed=6)
    img = ours_out(G, z, train)
    assert img.std() > 0.05
    np.testing.assert_allclose(img, theirs_out(netG, z, train), **TOL)
    np.testing.assert_allclose(ours_out(D, x, train), theirs_out(netD, x, train), **TOL)


def test_float32_by_default_and_architecture_from_shapes_at_64():
    netG = TorchG(100, 64, 64)                              # pytorch/examples' defaults: nz 100, ngf 64
    G = tw.generator_from_state_dict(netG.state_dict())
    assert G.main[0].weight.data.dtype == np.float32
    assert tw.infer_generator(netG.state_dict()) == dict(latent_dim=100, features=64, image_size=64,
                                                          channels=3, upsample="transpose")
    assert tw.infer_discriminator(TorchD(64, 64).state_dict()) == dict(features=64, image_size=64, channels=3,
                                                                        batchnorm_first=False)


def test_a_nearest_upsampling_generator_round_trips(tmp_path):
    G = Generator(Z, F, SIZE, upsample="nearest").double()
    tw.save_weights(G, tmp_path / "g.pth")
    back = tw.load_generator(tmp_path / "g.pth", dtype=np.float64)
    assert back.upsample == "nearest" and back.features == F
    z = noise()
    np.testing.assert_array_equal(ours_out(back, z, False), ours_out(G, z, False))


# ----- other names: d2l.ai's blocks, DataParallel, a bare Sequential -------------------------------

class G_block(torch.nn.Module):
    def __init__(self, in_channels, out_channels, strides=2, padding=1):
        super().__init__()
        self.conv2d_trans = torch.nn.ConvTranspose2d(in_channels, out_channels, 4, strides, padding, bias=False)
        self.batch_norm = torch.nn.BatchNorm2d(out_channels)
        self.activation = torch.nn.ReLU()

    def forward(self, X):
        return self.activation(self.batch_norm(self.conv2d_trans(X)))


class D_block(torch.nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False)
        self.batch_norm = torch.nn.BatchNorm2d(out_channels)
        self.activation = torch.nn.LeakyReLU(0.2)

    def forward(self, X):
        return self.activation(self.batch_norm(self.conv2d(X)))


def d2l_nets():
    """d2l.ai's net_G and net_D at 16×16: blocks named conv2d_trans / conv2d / batch_norm."""
    net_G = torch.nn.Sequential(G_block(Z, 2 * F, strides=1, padding=0), G_block(2 * F, F),
                                torch.nn.ConvTranspose2d(F, 3, 4, 2, 1, bias=False), torch.nn.Tanh())
    net_D = torch.nn.Sequential(D_block(3, F), D_block(F, 2 * F), torch.nn.Conv2d(2 * F, 1, 4, bias=False))
    return randomised(net_G, G_IN, 7), randomised(net_D, D_IN, 8)


def test_d2l_names_map_to_tinygans():
    net_G, net_D = d2l_nets()
    names = list(tw.tinygan_names(net_G.state_dict()))
    assert names == list(Generator(Z, F, SIZE).state_dict())
    assert names[:2] == ["main.0.weight", "main.1.weight"] and names[-1] == "main.6.weight"
    d2l_D = Discriminator(F, SIZE, batchnorm_first=True)
    assert list(tw.tinygan_names(net_D.state_dict())) == list(d2l_D.state_dict())
    assert tw.tinygan_names({"4.weight": 0, "0.conv2d_trans.weight": 1, "1.batch_norm.running_var": 2}) == \
        {"main.12.weight": 0, "main.0.weight": 1, "main.4.running_var": 2}


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_d2l_nets_load_and_agree(train):
    net_G, net_D = d2l_nets()
    G = tw.generator_from_state_dict({k: v.numpy() for k, v in net_G.state_dict().items()}, dtype=np.float64)
    D = tw.discriminator_from_state_dict({k: v.numpy() for k, v in net_D.state_dict().items()}, dtype=np.float64)
    assert tw.infer_discriminator(tw.tinygan_names(net_D.state_dict()))["batchnorm_first"] is True
    z, x = noise(seed=11), images(seed=12)
    np.testing.assert_allclose(ours_out(G, z, train), theirs_out(net_G, z, train), **TOL)
    np.testing.assert_allclose(ours_out(D, x, train), theirs_out(net_D, x, train).reshape(-1), **TOL)


def test_dataparallel_prefix_and_bare_sequential_are_renamed(tmp_path):
    netG = randomised(TorchG(Z, F, SIZE), G_IN, 4)
    wrapped = {f"module.{k}": v for k, v in netG.state_dict().items()}
    assert list(tw.tinygan_names(wrapped)) == list(netG.state_dict())
    assert list(tw.tinygan_names(netG.main.state_dict())) == list(netG.state_dict())
    torch.save(wrapped, tmp_path / "dp.pth")
    z = noise()
    np.testing.assert_allclose(ours_out(tw.load_generator(tmp_path / "dp.pth", dtype=np.float64), z, False),
                               theirs_out(netG, z, False), **TOL)


# ----- errors that name what is wrong ------------------------------------------------------------

def state_of(twin):
    return {k: v.numpy().copy() for k, v in twin.state_dict().items()}


def test_a_mis_shaped_tensor_is_named():
    state = state_of(TorchG(Z, F, SIZE))
    state["main.4.weight"] = np.ones(3)                    # BatchNorm γ of the second block: (F,) = (4,)
    with pytest.raises(tw.WeightsError, match=r"main\.4\.weight: checkpoint \(3,\) vs model \(4,\)"):
        tw.generator_from_state_dict(state)
    state = state_of(TorchG(Z, F, SIZE))
    state["main.0.weight"] = np.ones((Z, 5, 4, 4))         # 5 channels where 2F = 8 belong
    with pytest.raises(tw.WeightsError, match=r"main\.0\.weight has shape \(8, 5, 4, 4\).*8 channels, not 5"):
        tw.generator_from_state_dict(state)
    state = state_of(TorchD(F, SIZE))
    del state["main.3.running_var"]
    with pytest.raises(tw.WeightsError, match=r"missing keys: main\.3\.running_var"):
        tw.discriminator_from_state_dict(state)


@pytest.mark.parametrize("bad, message", [
    (np.ones(5), r"main\.3\.weight has shape \(5,\), but it is a convolution's weight, which has 4 dimensions"),
    (np.ones((16, 8, 4, 4, 1)), r"main\.3\.weight has shape \(16, 8, 4, 4, 1\), but it is a convolution's weight"),
    (np.ones((16, 8, 3, 3)), r"main\.3\.weight has shape \(16, 8, 3, 3\), but .* has \(16, 8, 4, 4\) there: "
                             r"a 4×4 kernel, not 3×3"),
    (np.ones((16, 7, 4, 4)), r"main\.3\.weight has shape \(16, 7, 4, 4\), but .* has \(16, 8, 4, 4\) there: "
                             r"8 channels, not 7"),
])
def test_a_mis_shaped_convolution_in_a_safetensors_file_is_named(tmp_path, bad, message):
    """A 32×32 G (convolutions main.0, 3, 6, 9) whose main.3.weight is wrong: the error names main.3,
    not main.0 (which it blamed when a wrong-shaped main.3 dropped out of the count of layers)."""
    st = pytest.importorskip("safetensors.numpy")
    state = {k: np.ascontiguousarray(v) if v.ndim else v for k, v in state_of(TorchG(Z, F, 32)).items()}
    st.save_file({**state, "main.3.weight": bad.astype(np.float32)}, tmp_path / "g.safetensors")
    with pytest.raises(tw.WeightsError, match=message) as e:
        tw.load_generator(tmp_path / "g.safetensors")
    assert "main.0.weight" not in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("key, bad, message", [
    ("main.9.weight", (5, 3, 4, 4),
     r"main\.9\.weight has shape \(5, 3, 4, 4\), .* has \(4, 3, 4, 4\) there: 4 channels, not 5"),
    ("main.6.weight", (8, 4, 5, 4), r"main\.6\.weight has shape \(8, 4, 5, 4\), .* a 4×4 kernel, not 5×4"),
])
def test_a_generators_mis_shaped_layer_is_named_wherever_it_is(key, bad, message):
    """The last layer too (whose F the others outvote), and a kernel of the wrong size."""
    state = state_of(TorchG(Z, F, 32))
    state[key] = np.ones(bad, np.float32)
    with pytest.raises(tw.WeightsError, match=message):
        tw.generator_from_state_dict(state)


def test_a_discriminators_mis_shaped_layer_is_named():
    state = state_of(TorchD(F, 32))                        # convolutions main.0, 2, 5, 8, 11
    state["main.5.weight"] = np.ones((16, 7, 4, 4), np.float32)
    with pytest.raises(tw.WeightsError, match=r"main\.5\.weight has shape \(16, 7, 4, 4\), .* has \(16, 8, 4, 4\) "
                                              r"there: 8 channels, not 7"):
        tw.discriminator_from_state_dict(state)
    state = state_of(TorchD(F, 32))
    state["main.2.weight"] = np.ones(8, np.float32)
    with pytest.raises(tw.WeightsError, match=r"main\.2\.weight has shape \(8,\), but it is a convolution's weight"):
        tw.discriminator_from_state_dict(state)


def test_g_and_d_swapped_say_so():
    with pytest.raises(tw.WeightsError, match="is this netD"):
        tw.generator_from_state_dict(state_of(TorchD(F, SIZE)))
    with pytest.raises(tw.WeightsError, match="is this a generator's, netG"):
        tw.discriminator_from_state_dict(state_of(TorchG(Z, F, SIZE)))
    with pytest.raises(tw.WeightsError, match="no 'main.0.weight'.*fc.weight"):
        tw.generator_from_state_dict({"fc.weight": np.ones((2, 2))})


@pytest.mark.parametrize("content, message", [
    (lambda p: p.write_text("not a pickle"), "could not be read as a PyTorch state_dict"),
    (lambda p: torch.save([torch.ones(2)], p), "holds a list, not a state_dict"),
    (lambda p: torch.save({"netG": {"main.0.weight": torch.ones(1)}, "epoch": 3}, p),
     "entry 'netG' holds a dict, not a tensor; its entries 'netG' are dicts: save one of them on its own"),
    (lambda p: torch.save(TorchG(Z, F, SIZE), p),
     r"pickled Python object \(torch_dcgan\.Generator\).*save model\.state_dict\(\) instead"),
])
def test_a_file_that_is_not_a_state_dict_says_what_it_is(tmp_path, content, message):
    path = tmp_path / "w.pth"
    content(path)
    with pytest.raises(tw.WeightsError, match=message) as e:
        tw.load_generator(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(tw.WeightsError, match="does not exist"):
        tw.read_state_dict(tmp_path / "none.pth")
    with pytest.raises(tw.WeightsError, match="expected a .pth, .pt, .safetensors file, got '.ckpt'"):
        tw.read_state_dict(tmp_path / "w.ckpt")


def test_without_torch_reading_and_writing_say_what_to_install(tmp_path, monkeypatch):
    G, _ = trained_tinygan()
    torch.save(TorchG(Z, F, SIZE).state_dict(), tmp_path / "netG.pth")
    monkeypatch.setitem(sys.modules, "torch", None)        # `import torch` now raises ImportError
    for call in (lambda: tw.read_state_dict(tmp_path / "netG.pth"),
                 lambda: tw.save_weights(G, tmp_path / "out.pth"),
                 lambda: tw.torch_state_dict(G)):
        with pytest.raises(ImportError, match=r"needs PyTorch, which is not installed: pip install torch") as e:
            call()
        assert "\n" not in str(e.value) and "download.pytorch.org/whl/cpu" in str(e.value)
    assert not (tmp_path / "out.pth").exists()


# ----- .safetensors: no torch needed -------------------------------------------------------------

def test_safetensors_round_trip_without_torch(tmp_path, monkeypatch):
    pytest.importorskip("safetensors")
    G, D = trained_tinygan("d2l")
    monkeypatch.setitem(sys.modules, "torch", None)
    tw.save_weights(G, tmp_path / "g.safetensors")
    tw.save_weights(D, tmp_path / "d.safetensors")
    G2 = tw.load_generator(tmp_path / "g.safetensors", dtype=np.float64)
    D2 = tw.load_discriminator(tmp_path / "d.safetensors", dtype=np.float64)
    for a, b in ((G, G2), (D, D2)):
        for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
            assert k == k2 and v.dtype == v2.dtype
            np.testing.assert_array_equal(v, v2, err_msg=k)
    assert int(G2.main[1].num_batches_tracked) == 3


def test_without_safetensors_says_what_to_install(tmp_path, monkeypatch):
    G, _ = trained_tinygan()
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"writing .*g\.safetensors needs the safetensors package, which "
                                          r"is not installed: pip install safetensors"):
        tw.save_weights(G, tmp_path / "g.safetensors")


# ----- the command line: export, then sample the .pth -----------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The checkpoint of a one-epoch 16×16 run on 12 made-up sprites."""
    from tinygan.train import Config, run
    tmp = tmp_path_factory.mktemp("torch_weights")
    mp = pytest.MonkeyPatch()
    mp.setenv("TINYGAN_HOME", str(tmp / "home"))
    run(Config(data=str(make_sprites(tmp / "sprites")), out=str(tmp / "run"), epochs=1, image_size=SIZE,
               features=F, latent_dim=Z, batch_size=4, progress=False))
    yield tmp / "run" / "checkpoint.npz"
    mp.undo()


def test_export_then_sample_the_pth_draws_the_checkpoints_pictures(tiny_run, tmp_path, capsys):
    out = tmp_path / "torch" / "netG.pth"
    assert pokemon.main(["export", "--checkpoint", str(tiny_run), "--out", str(out)]) == 0
    assert f"wrote G to {out} and D to {out.parent / 'netD.pth'}" in capsys.readouterr().out
    G, D, _ = checkpoint.load_models(tiny_run)
    netG, netD = TorchG(Z, F, SIZE), TorchD(F, SIZE)       # float32, as the run
    netG.load_state_dict(torch.load(out, weights_only=True), strict=True)
    netD.load_state_dict(torch.load(out.parent / "netD.pth", weights_only=True), strict=True)
    z = noise().astype(np.float32)
    np.testing.assert_allclose(theirs_out(netG, z, False), ours_out(G, z, False), rtol=1e-5, atol=1e-6)
    x = images().astype(np.float32)
    np.testing.assert_allclose(theirs_out(netD, x, False), ours_out(D, x, False), rtol=1e-5, atol=1e-5)

    from PIL import Image
    grids = {}
    for name, ck in (("pth", out), ("npz", tiny_run)):
        png = tmp_path / f"{name}.png"
        assert pokemon.main(["sample", "--checkpoint", str(ck), "--n", "9", "--bn", "running",
                             "--out", str(png)]) == 0
        assert "wrote 9 samples (16x16, G's weights, BatchNorm: running" in capsys.readouterr().out
        grids[name] = np.asarray(Image.open(png))
    assert grids["pth"].std() > 0
    np.testing.assert_array_equal(grids["pth"], grids["npz"])


def test_export_and_sample_without_torch_exit_1_saying_what_to_install(tiny_run, tmp_path, capsys, monkeypatch):
    G, _, _ = checkpoint.load_models(tiny_run)
    tw.save_weights(G, tmp_path / "netG.pth")
    monkeypatch.setitem(sys.modules, "torch", None)
    assert pokemon.main(["export", "--checkpoint", str(tiny_run), "--out", str(tmp_path / "o" / "netG.pth")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "pip install torch" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    assert pokemon.main(["sample", "--checkpoint", str(tmp_path / "netG.pth"), "--out", str(tmp_path / "g.png")]) == 1
    assert "pip install torch" in capsys.readouterr().err and not (tmp_path / "g.png").exists()


def test_export_help_explains(capsys):
    with pytest.raises(SystemExit) as e:
        pokemon.main(["export", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--netG and --netD" in text and "netD.pth" in text and "without torch" in text


def test_export_refuses_to_write_g_over_d(tiny_run, tmp_path):
    with pytest.raises(tw.WeightsError, match="is where D goes"):
        tw.export_checkpoint(tiny_run, tmp_path / "netD.pth")
