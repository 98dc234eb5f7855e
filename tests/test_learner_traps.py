"""Traps a learner hits (issue: teaching, round 2): each test fails on the old behaviour.

* ``DDPMSchedule.from_sde`` defaults to the chain whose alpha_bar matches the SDE's marginals,
  so a chain-trained loss (``get_loss("ddpm")``, ``HybridLoss``) and the SDE's samplers agree.
* One prior-KL rule: the same chain gets the same verdict and number in training, sampling and
  likelihood (the old check used the data's statistics in two of them and standardised data in
  the third: 0.817 vs 0.226 nats/dim for one chain).
* ``annealed_langevin`` on a VP SDE says what to use instead.
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.data import get_dataset
from scoresde.likelihood import log_likelihood
from scoresde.losses import get_loss
from scoresde.nets import ResidualMLP
from scoresde.parameterization import ScoreModel
from scoresde.samplers import sample
from scoresde.sde import VESDE, VPSDE, DDPMSchedule, prior
from scoresde.sde.prior import PriorMismatchWarning
from scoresde.training import train

SHORT = {"beta_min": 0.01, "beta_max": 2.0}  # the notes' T = 100 chain: alpha_bar_T = 0.37


def test_from_sde_matches_the_sde_marginals_by_default() -> None:
    sde = VPSDE()
    for sched in (DDPMSchedule.from_sde(sde, 1000), get_loss("ddpm", sde).schedule):
        alpha, _ = sde.marginal(sched.times.double())
        torch.testing.assert_close(sched.alpha_bars.double(), alpha.double() ** 2)
    old = DDPMSchedule.from_sde(sde, 1000, exact=False)  # the Appendix-B chain, on request
    ratio = float(old.alpha_bars[-1] / sde.marginal(torch.tensor(sde.T).double())[0] ** 2)
    assert abs(ratio - 0.925) < 1e-3


def _kl_numbers(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        re.search(r"<= ([0-9.e-]+) nats/dim for standardised data", str(w.message)).group(1)
        for w in caught
        if issubclass(w.category, PriorMismatchWarning)
    ]


def test_one_prior_rule_in_training_sampling_and_likelihood(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(prior, "_WARNED", set())
    sde = VPSDE(**SHORT)
    data = get_dataset("8gaussians")  # not standardised: its own bound is larger
    model = ScoreModel(ResidualMLP(2, hidden=8, depth=1), sde, predicts="eps")
    gm = GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]], sde=sde)
    x = data.scaler.transform(data.test[:64]).float()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(model, get_loss("dsm", sde), data, torch.optim.Adam(model.parameters()), steps=1,
              batch_size=8, out_dir=tmp_path, progress=False, device="cpu")  # fmt: skip
        sample("ddpm", sde, gm, sde.prior_sample((8, 2)), 4)
        log_likelihood(sde, gm, x[:4], rtol=1e-3, atol=1e-3)
    numbers = _kl_numbers(caught)
    assert len(numbers) == 3 and len(set(numbers)) == 1, numbers  # one verdict, one number
    expected = prior.prior_kl(sde).upper  # standardised data
    assert abs(float(numbers[0]) - expected) < 1e-3 * expected
    texts = [str(w.message) for w in caught if issubclass(w.category, PriorMismatchWarning)]
    assert "for these data" in texts[0] and "for these data" not in texts[1]


def test_unstandardised_data_on_a_long_schedule_get_their_own_warning(monkeypatch) -> None:
    monkeypatch.setattr(prior, "_WARNED", set())
    sde = VPSDE()  # passes the SDE rule (alpha_bar_T = 4.3e-5)
    with pytest.warns(PriorMismatchWarning, match="far from standardised"):
        prior.check_prior(sde, data_var=400.0, data_mean=30.0, context="t")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prior.check_prior(sde, data_var=1.0, data_mean=0.0, context="t2")
        prior.check_prior(sde, context="t3")


def test_annealed_langevin_on_vp_names_what_to_use() -> None:
    sde = VPSDE()
    gm = GaussianMixture([1.0], [[0.0]], [[1.0]], sde=sde)
    with pytest.raises(
        ValueError, match=r"does not support VPSDE; expected one of .VESDE.*sample\(.pc."
    ):
        sample("annealed_langevin", sde, gm, sde.prior_sample((4, 1)), 5)
    ve = VESDE()
    out, _ = sample("annealed_langevin", ve, gm.with_sde(ve), ve.prior_sample((4, 1)), 5)
    assert out.shape == (4, 1)


def _ddpm_run(out, **kw):
    torch.manual_seed(0)
    sde = VPSDE()
    model = ScoreModel(ResidualMLP(2, hidden=8, depth=1), sde, predicts="eps")
    return train(model, get_loss("ddpm", sde), get_dataset("4gaussians"),
                 torch.optim.Adam(model.parameters(), lr=1e-3), steps=150, batch_size=4,
                 out_dir=out, progress=False, device="cpu", log_every=50, ckpt_every=100,
                 **kw)  # fmt: skip


def _rows(out) -> list[int]:
    lines = (out / "log.csv").read_text().splitlines()
    assert lines[0].startswith("step,loss,")
    return [int(line.split(",")[0]) for line in lines[1:]]


def test_ddpm_loss_run_writes_a_log_row_every_log_every_steps(tmp_path) -> None:
    """A DDPMLoss run writes one row every log_every steps, whether it runs in one go or in
    chunks that resume (a reported run, log_every=500 over 1500 steps, wrote only the header;
    the same run at that size writes its three rows too: 1/10 of it here, checkpoints between
    rows as there)."""
    _ddpm_run(tmp_path / "one")
    assert _rows(tmp_path / "one") == [50, 100, 150]
    for _ in range(3):  # 70 + 70 + 10 steps, each chunk resumed from where the last stopped
        _ddpm_run(tmp_path / "chunks", stop_after=70)
    assert _rows(tmp_path / "chunks") == [50, 100, 150]
    one, chunks = ((tmp_path / d / "log.csv").read_text().splitlines() for d in ("one", "chunks"))
    strip = lambda rows: [r.split(",")[:2] for r in rows]  # noqa: E731 - step and loss
    assert strip(one) == strip(chunks)


def test_resuming_with_other_t_bins_refuses_and_keeps_the_rows(tmp_path) -> None:
    """The one way found to leave log.csv with only its header: a resume whose t_bins differ
    (every row then has the wrong width and was trimmed away, then the run crashed on a tensor
    size). It is now refused before anything is written, and the rows stay."""
    _ddpm_run(tmp_path, stop_after=120)
    before = (tmp_path / "log.csv").read_text()
    with pytest.raises(ValueError, match=r"logs 10 t-bins but this run asks for t_bins=5"):
        _ddpm_run(tmp_path, t_bins=5)
    assert (tmp_path / "log.csv").read_text() == before and _rows(tmp_path) == [50, 100]
    _ddpm_run(tmp_path)  # the run's own t_bins: resumes and finishes
    assert _rows(tmp_path) == [50, 100, 150]
