"""Class-conditional networks, null-label dropout and conditional checkpoints (issue 27).

The done-when test trains one small conditional ResidualMLP on a labelled 2-D mixture with
null-label dropout and compares its scores with the exact ones of :mod:`scoresde.conditional`:
s(x, t | ∅) must match the unconditional mixture score and s(x, t | y) the conditional one.
"""

from __future__ import annotations

import copy

import pytest
import torch

from scoresde import VPSDE, GaussianMixture
from scoresde.conditional import LabeledMixture
from scoresde.data import load_mixture
from scoresde.losses import DSMLoss
from scoresde.nets import ResidualMLP, UNet
from scoresde.parameterization import ScoreModel
from scoresde.training import load_model, train
from scoresde.training.checkpoint import model_config, model_from_config
from scoresde.training.steps import drop_labels

# Two classes of two components each, on the diagonals of a square: class 0 at (2, 2) and
# (-2, -2), class 1 at (2, -2) and (-2, 2). Away from its own class the conditional score points
# elsewhere than the unconditional one, so the two are easy to tell apart.
MEANS = [[2.0, 2.0], [-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0]]
COVS = [[0.25, 0.25]] * 4
LABELS = [0, 0, 1, 1]
TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)
#: Bound on the relative MSE of s(x, t | ∅) against the exact unconditional score, averaged over
#: TIMES. A correct run measures 0.012; with dropout never applied (the null row untrained) it
#: measured 0.89, with the null label never used at evaluation (class 0 instead) 1.50.
UNCOND_BOUND = 0.1


def _relative_mse(score_fn, exact, x: torch.Tensor, t: float) -> float:
    with torch.no_grad():
        s = score_fn(x, torch.full((x.shape[0],), t, dtype=x.dtype))
        ref = exact(x, t)
    return float(((s - ref) ** 2).sum() / (ref**2).sum())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    sde = VPSDE()
    data = load_mixture([0.25] * 4, MEANS, COVS, n_test=1000, labels=LABELS)
    torch.manual_seed(0)
    net = ResidualMLP(2, hidden=64, depth=2, num_classes=2)
    model = ScoreModel(net, sde)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    res = train(
        model,
        DSMLoss(sde),
        data,
        opt,
        steps=1500,
        batch_size=256,
        out_dir=tmp_path_factory.mktemp("cond"),
        ema_decay=0.99,
        ema_warmup=True,
        label_dropout=0.2,
        progress=False,
        device="cpu",
    )
    exact = LabeledMixture(GaussianMixture([0.25] * 4, MEANS, COVS, sde=sde), LABELS)
    return res, exact


def test_null_label_dropout_trains_an_unconditional_model_in_the_same_network(trained) -> None:
    res, exact = trained
    model = copy.deepcopy(res.model).double()
    g = torch.Generator().manual_seed(3)
    errs_uncond, cond_err, cond_vs_uncond = [], [], []
    for t in TIMES:
        alpha, sigma = exact.sde.marginal(torch.tensor(t, dtype=torch.float64))
        x0 = exact.mixture.sample(2000, generator=g)
        x = alpha * x0 + sigma * torch.randn(x0.shape, generator=g, dtype=torch.float64)
        errs_uncond.append(_relative_mse(model, exact.mixture.score, x, t))
        cond0 = exact.given(0).score

        def model_given_0(x, tt):
            return model(x, tt, 0)

        cond_err.append(_relative_mse(model_given_0, cond0, x, t))
        cond_vs_uncond.append(_relative_mse(model_given_0, exact.mixture.score, x, t))
    uncond = sum(errs_uncond) / len(TIMES)
    assert uncond < UNCOND_BOUND, f"s(x, t | null) off the unconditional score: {errs_uncond}"
    # the conditional score of class 0 is the conditional one, not the unconditional one
    assert sum(cond_err) < 0.5 * sum(cond_vs_uncond), (cond_err, cond_vs_uncond)


def test_conditional_checkpoint_round_trips_with_its_label_set(trained) -> None:
    res, _ = trained
    loaded = load_model(res.checkpoint)
    assert loaded.model.num_classes == 2 and loaded.model.class_names is None
    x, t = torch.randn(5, 2), torch.full((5,), 0.4)
    for y in (None, 0, 1):
        assert torch.allclose(loaded.model(x, t, y), res.model(x, t, y), atol=1e-6)
    # names travel with the config; a label set that disagrees with the network is refused
    res.model.class_names = ["diag", "anti"]
    config = model_config(res.model)
    assert config is not None and config["labels"] == {"num_classes": 2, "names": ["diag", "anti"]}
    assert model_from_config(config).class_names == ["diag", "anti"]
    config["labels"] = {"num_classes": 3, "names": None}
    with pytest.raises(ValueError, match="num_classes = 2"):
        model_from_config(config)


@pytest.mark.parametrize(
    "make",
    [lambda k: ResidualMLP(2, hidden=32, depth=2, num_classes=k), lambda k: UNet(num_classes=k)],
    ids=["mlp", "unet"],
)
def test_unconditional_networks_are_unchanged(make) -> None:
    torch.manual_seed(0)
    plain = make(None)
    torch.manual_seed(0)
    cond = make(3)
    keys = set(cond.state_dict()) - set(plain.state_dict())
    assert keys == {"label_embed.weight"}
    assert all(torch.equal(v, cond.state_dict()[k]) for k, v in plain.state_dict().items())
    assert "num_classes" not in plain.config() and cond.config()["num_classes"] == 3
    assert plain.label_embed is None and cond.label_embed.num_embeddings == 4  # + the null label


def test_labels_are_checked() -> None:
    net = ResidualMLP(2, hidden=16, depth=1, num_classes=3)
    x, c = torch.randn(4, 2), torch.rand(4)
    with pytest.raises(ValueError, match=r"expected classes in 0\.\.2 \(or 3, the null label\)"):
        net(x, c, torch.tensor([0, 1, 2, 4]))
    with pytest.raises(TypeError, match="integer labels"):
        net(x, c, torch.zeros(4))
    with pytest.raises(ValueError, match="unconditional network"):
        ResidualMLP(2, hidden=16, depth=1)(x, c, 1)
    assert torch.equal(net(x, c, 3), net(x, c))  # the null label is index num_classes


def test_drop_labels_replaces_a_fraction_by_the_null_label() -> None:
    y = torch.zeros(20_000, dtype=torch.long)
    dropped = drop_labels(y, 0.1, 7, torch.Generator().manual_seed(0))
    assert set(dropped.unique().tolist()) == {0, 7}
    assert abs(float((dropped == 7).float().mean()) - 0.1) < 0.01
    assert drop_labels(y, 0.0, 7, torch.Generator()) is y


def test_train_refuses_mismatched_labels(tmp_path) -> None:
    sde = VPSDE()
    plain = load_mixture([0.5, 0.5], MEANS[:2], COVS[:2], n_test=10)
    three = load_mixture([0.25] * 4, MEANS, COVS, n_test=10, labels=[0, 1, 2, 2])

    def run(model, data, p):
        opt = torch.optim.Adam(model.parameters())
        kw = {"steps": 1, "batch_size": 4, "out_dir": tmp_path, "progress": False}
        return train(model, DSMLoss(sde), data, opt, label_dropout=p, **kw)

    cond = ScoreModel(ResidualMLP(2, hidden=8, depth=1, num_classes=2), sde)
    with pytest.raises(
        ValueError, match="expected data with 2 classes, received 'mixture' with no"
    ):
        run(cond, plain, 0.1)
    with pytest.raises(ValueError, match="with 3 classes"):
        run(cond, three, 0.1)
    with pytest.raises(ValueError, match="needs a class-conditional model"):
        run(ScoreModel(ResidualMLP(2, hidden=8, depth=1), sde), plain, 0.1)
    with pytest.raises(ValueError, match=r"label_dropout in \[0, 1\)"):
        run(cond, three, 1.0)
