"""Networks: shapes, time conditioning, embeddings, validation."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.nets import (
    NETS,
    GaussianFourierEmbedding,
    ResidualMLP,
    SinusoidalEmbedding,
    UNet,
    get_net,
)


def test_sinusoidal_embedding_matches_formula():
    emb = SinusoidalEmbedding(8, scale=1000.0, max_period=10000.0)
    c = torch.tensor([0.0, 0.5, 1.0])
    out = emb(c)
    assert out.shape == (3, 8)
    k = torch.arange(4)
    freqs = torch.exp(-math.log(10000.0) * k / 4)
    expected = torch.cat([torch.sin(500 * freqs), torch.cos(500 * freqs)])
    torch.testing.assert_close(out[1], expected)
    torch.testing.assert_close(out[0], torch.cat([torch.zeros(4), torch.ones(4)]))


def test_fourier_embedding_reproducible_and_saved():
    a = GaussianFourierEmbedding(16, scale=16.0, generator=torch.Generator().manual_seed(0))
    b = GaussianFourierEmbedding(16, scale=16.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.W, b.W)
    assert "W" in a.state_dict()
    out = a(torch.rand(5))
    assert out.shape == (5, 16) and out.abs().max() <= 1.0


def test_fourier_embedding_matches_formula():
    """[sin(2 pi c W), cos(2 pi c W)] with W = scale * N(0, 1) draws (Tancik et al. 2020;
    Song et al. 2021's Gaussian Fourier projection)."""
    emb = GaussianFourierEmbedding(8, scale=3.0, generator=torch.Generator().manual_seed(1))
    W = 3.0 * torch.randn(4, generator=torch.Generator().manual_seed(1))
    c = torch.tensor([0.0, 0.3, 0.8])
    args = 2 * math.pi * c[:, None] * W[None]
    torch.testing.assert_close(emb(c), torch.cat([torch.sin(args), torch.cos(args)], dim=-1))


@pytest.mark.parametrize("dim", [0, 7])
def test_embedding_rejects_bad_dim(dim):
    with pytest.raises(ValueError, match="even integer"):
        SinusoidalEmbedding(dim)


@pytest.mark.parametrize("kind", ["fourier", "sinusoidal"])
def test_mlp_shapes_and_time_dependence(kind):
    torch.manual_seed(0)
    net = ResidualMLP(3, hidden=32, depth=2, time_embedding=kind)
    x = torch.randn(4, 3)
    assert torch.count_nonzero(net(x, torch.rand(4))) == 0  # zero-initialised output layer
    torch.nn.init.normal_(net.out.weight)
    a, b = net(x, torch.full((4,), 0.1)), net(x, torch.full((4,), 0.9))
    assert a.shape == (4, 3) and not torch.allclose(a, b)
    torch.testing.assert_close(net(x, torch.tensor(0.1)), a)  # scalar c broadcasts


def test_mlp_validates_inputs():
    net = ResidualMLP(2, hidden=8, depth=1)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        net(torch.randn(4, 3), torch.rand(4))
    with pytest.raises(ValueError, match=r"shape \(batch,\)"):
        net(torch.randn(4, 2), torch.rand(3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        net(torch.randn(4, 2), 0.5)
    with pytest.raises(ValueError, match="hidden"):
        ResidualMLP(2, hidden=0)


@pytest.mark.parametrize(
    "size,kwargs",
    [(8, {}), (28, {"channel_mult": (1, 2, 2), "attn_resolutions": (7,), "base_channels": 16})],
)
def test_unet_shapes(size, kwargs):
    torch.manual_seed(0)
    net = UNet(in_channels=1, image_size=size, **kwargs)
    for p in net.parameters():  # undo zero-inits so the time dependence is visible
        torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(2, 1, size, size)
    out = net(x, torch.tensor([0.1, 0.9]))
    assert out.shape == x.shape
    assert not torch.allclose(net(x, torch.tensor([0.5, 0.5])), out)


def test_unet_gradients_flow_and_validation():
    net = UNet(in_channels=3, base_channels=8, image_size=8, attn_resolutions=(4,))
    x = torch.randn(2, 3, 8, 8)
    net(x, torch.rand(2)).pow(2).sum().backward()
    assert net.out.weight.grad is not None
    with pytest.raises(ValueError, match=r"shape \(batch, 3, H, W\)"):
        net(torch.randn(2, 1, 8, 8), torch.rand(2))


def test_registry():
    assert set(NETS) == {"mlp", "unet"}
    assert isinstance(get_net("mlp", dim=2), ResidualMLP)
    with pytest.raises(ValueError, match="unknown network 'resnet'; expected one of 'mlp', 'unet'"):
        get_net("resnet")


@pytest.mark.parametrize("name", ["mlp", "unet"])
def test_config_rebuilds_the_same_network(name):
    from scoresde.nets import net_from_config

    kwargs = {"dim": 3, "hidden": 16, "depth": 2} if name == "mlp" else {"base_channels": 8}
    net = get_net(name, **kwargs)
    twin = net_from_config(net.config())
    assert twin.config() == net.config() and type(twin) is type(net)
    twin.load_state_dict(net.state_dict())  # same architecture: every weight has its place
    with pytest.raises(ValueError, match="expected a dict with a 'name' key, received 'mlp'"):
        net_from_config("mlp")


def test_mlp_input_fourier_features():
    from scoresde.nets import net_from_config

    g = torch.Generator().manual_seed(0)
    net = ResidualMLP(2, hidden=16, depth=1, fourier_features=8, fourier_scale=2.0, generator=g)
    assert net.fourier is not None and net.fourier.shape == (2, 8)
    assert net.inp.in_features == 2 + 2 * 8 and "fourier" in net.state_dict()
    twin = net_from_config(net.config())
    twin.load_state_dict(net.state_dict())  # the frequencies travel with the weights
    torch.nn.init.normal_(net.out.weight)  # a non-zero output layer, so outputs depend on the input
    twin.load_state_dict(net.state_dict())
    x, c = torch.randn(5, 2), torch.rand(5)
    assert torch.equal(net(x, c), twin(x, c)) and net(x, c).shape == (5, 2)
    assert net.double()(x.double(), c.double()).dtype == torch.float64
    plain = ResidualMLP(2, hidden=16, depth=1)
    assert plain.fourier is None and "fourier" not in plain.state_dict()
    assert "fourier_features" not in plain.config()  # older configs and checkpoints unchanged
    with pytest.raises(ValueError, match="fourier_features must be an integer >= 0, received -1"):
        ResidualMLP(2, fourier_features=-1)
    with pytest.raises(ValueError, match="fourier_scale must be > 0, received 0"):
        ResidualMLP(2, fourier_features=4, fourier_scale=0)
