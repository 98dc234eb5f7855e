"""The learned VDM schedule (Kingma et al. 2021): monotone, a true linear SDE, and its VLB."""

from __future__ import annotations

import copy

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.losses import VDMLoss, vdm_vlb
from scoresde.sde import VPSDE
from scoresde.sde.learned import LearnedLogSNR

F64 = torch.float64


def _sched(seed: int = 0, scale: float = 1.0, **kw) -> LearnedLogSNR:
    g = torch.Generator().manual_seed(seed)
    return LearnedLogSNR(init_scale=scale, generator=g, **kw).double()


def _d_dt(fn, t: torch.Tensor) -> torch.Tensor:
    t = t.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(t).sum(), t)
    return g


def _mixture() -> GaussianMixture:
    means = [[-1.0, 0.5], [1.0, -0.5], [0.3, 1.2]]
    return GaussianMixture([0.3, 0.5, 0.2], means, [[0.04, 0.09], [0.05, 0.02], [0.1, 0.03]])


def _frozen_eps(mix: GaussianMixture, sched: LearnedLogSNR):
    """The exact eps of ``mix`` under a frozen copy of ``sched`` (a fixed function of (z, t))."""
    frozen = copy.deepcopy(sched).requires_grad_(False)
    return mix.with_sde(VPSDE(schedule=frozen)).eps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monotone_for_any_parameters(seed: int) -> None:
    """gamma increases with gamma' > 0 for random (even wild) parameters; gamma' is d gamma/dt."""
    sched = _sched(seed, scale=3.0)
    with torch.no_grad():
        for p in sched.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed), dtype=F64))
    t = torch.linspace(0, 1, 2001, dtype=F64)
    gamma, dgamma = sched.gamma_and_grad(t)
    assert bool((gamma.diff() > 0).all()) and bool((dgamma > 0).all())
    g0, g1 = sched.ends(F64)
    torch.testing.assert_close(gamma[[0, -1]], torch.stack([g0, g1]), rtol=0, atol=1e-12)
    torch.testing.assert_close(dgamma, _d_dt(sched.gamma, t), rtol=1e-10, atol=1e-10)


def test_moment_odes_and_log_snr_inverse() -> None:
    """VPSDE(schedule=learned) satisfies dm/dt = a m, dv/dt = 2 a v + g^2; t(lambda(t)) = t."""
    sde = VPSDE(schedule=_sched(3, scale=1.5))
    t = torch.linspace(0.01, 0.98, 41, dtype=F64)
    a = sde.drift_coef(t)
    dlog_alpha = _d_dt(lambda s: torch.log(sde.marginal(s)[0]), t)
    torch.testing.assert_close(dlog_alpha, a, rtol=1e-9, atol=1e-9)
    v = sde.marginal(t)[1] ** 2
    dv = _d_dt(lambda s: sde.marginal(s)[1] ** 2, t)
    torch.testing.assert_close(dv, 2 * a * v + sde.g2(t), rtol=1e-8, atol=1e-8)
    lam = sde.log_snr(t)
    dlam = _d_dt(sde.log_snr, t)
    torch.testing.assert_close(dlam, -sde.g2(t) / v, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(sde.t_from_log_snr(lam), t, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(lam, -sde.schedule.gamma(t), rtol=1e-9, atol=1e-9)


def test_validation_messages() -> None:
    with pytest.raises(ValueError, match="expected gamma_min < gamma_max, received"):
        LearnedLogSNR(gamma_min=3.0, gamma_max=1.0)
    with pytest.raises(ValueError, match="expected an int hidden >= 1, received 0"):
        LearnedLogSNR(hidden=0)
    with pytest.raises(TypeError, match="expected a LearnedLogSNR or a VPSDE built on one"):
        VDMLoss(VPSDE())
    x = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"expected t of shape \(4,\)"):
        vdm_vlb(lambda z, t: z, _sched(), x, torch.zeros(3, dtype=F64), x)


def _diffusion_by_quadrature(
    sched: LearnedLogSNR, x: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """int_0^1 of the diffusion integrand at fixed (x, eps), composite Simpson in t (n = 400)."""
    mix = _mixture()
    eps_fn = mix.with_sde(VPSDE(schedule=sched)).eps
    t = torch.linspace(0, 1, 401, dtype=F64)
    w = torch.ones_like(t)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    w = w / (3 * (len(t) - 1))
    total = torch.zeros(x.shape[0], dtype=F64)
    with torch.no_grad():
        for ti, wi in zip(t, w):
            tt = ti.expand(x.shape[0])
            total += wi * vdm_vlb(eps_fn, sched, x, tt, eps, variance_grad=False).diffusion
    return total


def test_vlb_depends_on_schedule_only_through_end_points() -> None:
    """For fixed (x, eps) the diffusion integral is the same for two shapes with equal ends
    (VDM Eq. 20), and changes when an end point moves (so the check can fail)."""
    g = torch.Generator().manual_seed(0)
    x = _mixture().sample(16, generator=g).to(F64)
    eps = torch.randn(x.shape, generator=g, dtype=F64)
    linear, wiggly = _sched(0, scale=0.0), _sched(5, scale=2.0)
    t = torch.linspace(0, 1, 11, dtype=F64)
    assert float((linear.gamma(t) - wiggly.gamma(t)).detach().abs().max()) > 1.0  # shapes differ
    a = _diffusion_by_quadrature(linear, x, eps)
    b = _diffusion_by_quadrature(wiggly, x, eps)
    torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
    moved = _diffusion_by_quadrature(_sched(0, scale=0.0, gamma_min=-6.0), x, eps)
    assert float((moved - a).abs().mean()) > 1e-2


def test_variance_gradient_hook_is_grad_of_mean_square() -> None:
    """One backward gives d mean(L) to the ends and d mean(L_inf^2) to the shape."""
    sched = _sched(1, scale=1.0)
    eps_fn = _frozen_eps(_mixture(), sched)
    g = torch.Generator().manual_seed(1)
    x = _mixture().sample(32, generator=g).to(F64)
    t, eps = torch.rand(32, generator=g, dtype=F64), torch.randn(x.shape, generator=g, dtype=F64)
    shape_p = [sched.raw_w1, sched.raw_w2, sched.raw_w3, sched.b2]
    ends_p = [sched.gamma_0, sched.raw_range]
    vdm_vlb(eps_fn, sched, x, t, eps).total.mean().backward()
    got_shape = [p.grad.clone() for p in shape_p]
    got_ends = [p.grad.clone() for p in ends_p]
    plain = vdm_vlb(eps_fn, sched, x, t, eps, variance_grad=False)
    want_shape = torch.autograd.grad((plain.diffusion**2).mean(), shape_p, retain_graph=True)
    want_ends = torch.autograd.grad(plain.total.mean(), ends_p)
    for got, want in zip(got_shape + got_ends, list(want_shape) + list(want_ends)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_learned_shape_lowers_estimator_variance() -> None:
    """Training the shape (ends fixed) lowers the variance of the one-sample VLB estimator
    against the fixed log-SNR-linear schedule with the same ends; the mean does not move.

    The ends (gamma from -4 to 10) and the component variance 0.05 put the integrand's mass
    (in gamma) on a short window near log 0.05 that the linear schedule spreads thinly over t.
    """
    mix = GaussianMixture([0.3, 0.5, 0.2], [[-1.0, 0.5], [1.0, -0.5], [0.3, 1.2]], [[0.05] * 2] * 3)
    sched = _sched(0, scale=0.0, gamma_min=-4.0)
    sched.gamma_0.requires_grad_(False)
    sched.raw_range.requires_grad_(False)
    fixed = copy.deepcopy(sched)
    opt = torch.optim.Adam([p for p in sched.parameters() if p.requires_grad], lr=5e-2)
    loss = VDMLoss(sched)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        x = mix.sample(256, generator=g).to(F64)
        opt.zero_grad()
        loss(_frozen_eps(mix, sched), x, generator=g).backward()
        opt.step()

    def stats(s: LearnedLogSNR) -> tuple[float, float, float]:
        gen = torch.Generator().manual_seed(7)
        x = mix.sample(20000, generator=gen).to(F64)
        t = torch.rand(x.shape[0], generator=gen, dtype=F64)
        eps = torch.randn(x.shape, generator=gen, dtype=F64)
        with torch.no_grad():
            d = vdm_vlb(_frozen_eps(mix, s), s, x, t, eps).diffusion
        return float(d.mean()), float(d.var()), float(d.std() / d.shape[0] ** 0.5)

    m_fix, v_fix, se_fix = stats(fixed)
    m_new, v_new, se_new = stats(sched)
    assert v_new < 0.75 * v_fix, (v_new, v_fix)
    assert abs(m_new - m_fix) < 4 * (se_fix**2 + se_new**2) ** 0.5, (m_new, m_fix)


def test_pf_ode_likelihood_is_exact_under_learned_schedule() -> None:
    """The library's PF-ODE likelihood runs unchanged on the learned SDE: with the exact mixture
    score and the exact p_T as prior, log p_eps(x) is recovered to the solver tolerance."""
    from scoresde.likelihood import log_likelihood

    sde = VPSDE(schedule=_sched(5, scale=1.5).requires_grad_(False))
    mix = _mixture().with_sde(sde)
    x = mix.sample(6, generator=torch.Generator().manual_seed(0)).to(F64)
    t_T, t_eps = (torch.tensor(v, dtype=F64) for v in (sde.T, sde.eps))
    res = log_likelihood(
        sde,
        mix.score,
        x,
        rtol=1e-7,
        atol=1e-7,
        dtype=F64,
        prior_log_prob=lambda z: mix.marginal_log_prob(z, t_T),
    )
    torch.testing.assert_close(res.log_prob, mix.marginal_log_prob(x, t_eps), rtol=0, atol=1e-5)


def test_vdm_loss_trains_network_and_schedule_with_train(tmp_path) -> None:
    """VDMLoss plugs into train(): the schedule registered on the model is optimised, stays
    monotone, and is saved in the checkpoint (its EMA too)."""
    from scoresde.data import get_dataset
    from scoresde.nets import ResidualMLP
    from scoresde.parameterization import ScoreModel
    from scoresde.training import train
    from scoresde.training.checkpoint import load_checkpoint

    torch.manual_seed(0)
    sde = VPSDE(schedule=LearnedLogSNR(hidden=16, generator=torch.Generator().manual_seed(0)))
    model = ScoreModel(ResidualMLP(2, hidden=32, depth=2), sde)
    model.add_module("schedule", sde.schedule)
    before = {k: v.detach().clone() for k, v in sde.schedule.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    res = train(model, VDMLoss(sde), get_dataset("8gaussians"), opt, steps=10, batch_size=64,
                out_dir=tmp_path, log_every=10, ckpt_every=10, progress=False)  # fmt: skip
    after = sde.schedule.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in ("raw_w2", "gamma_0")), after
    gamma, dgamma = sde.schedule.gamma_and_grad(torch.linspace(0, 1, 501))
    assert bool((gamma.diff() > 0).all()) and bool((dgamma > 0).all())
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert torch.equal(state["model"]["schedule.raw_w2"], after["raw_w2"])
    assert "module.schedule.raw_w2" in state["ema"]
    assert res.step == 10


def test_config_round_trip_restores_the_learned_schedule() -> None:
    """config() -> JSON -> sde_from_config gives the shape; the state dict gives the weights:
    marginals, drift, g^2 and the log-SNR inverse then agree exactly."""
    import json

    from scoresde.sde import sde_from_config

    sched = LearnedLogSNR(hidden=8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():  # as if trained: every parameter moved away from its initialisation
        for p in sched.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(4)))
    sde = VPSDE(schedule=sched)
    back = sde_from_config(json.loads(json.dumps(sde.config())))
    assert isinstance(back.schedule, LearnedLogSNR) and back.config() == sde.config()
    t = torch.linspace(1e-3, 1, 101)
    assert not torch.equal(back.marginal(t)[1], sde.marginal(t)[1])  # the shape alone is not it
    back.schedule.load_state_dict(sched.state_dict())
    for a, b in zip(back.marginal(t), sde.marginal(t), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(back.g2(t), sde.g2(t)) and torch.equal(back.drift_coef(t), sde.drift_coef(t))
    lam = sde.log_snr(t)
    assert torch.equal(back.t_from_log_snr(lam), sde.t_from_log_snr(lam))
    with pytest.raises(ValueError, match=r"expected the keys \['gamma_0', 'gamma_1', 'hidden'"):
        LearnedLogSNR.from_dict({"kind": "learned_log_snr", "hidden": 8})
    with pytest.raises(ValueError, match="expected kind 'learned_log_snr', received 'linear'"):
        LearnedLogSNR.from_dict({"kind": "linear", "gamma_0": -5, "gamma_1": 5, "hidden": 8})


def test_checkpoint_of_a_learned_schedule_model_reloads_with_its_schedule(tmp_path) -> None:
    """train() -> load_model: the rebuilt model's schedule (raw and EMA weights) is the trained
    one, so its marginals and scores are identical; unregistered, the model has no config."""
    from scoresde.data import get_dataset
    from scoresde.nets import ResidualMLP
    from scoresde.parameterization import ScoreModel
    from scoresde.training import load_model, model_config, train
    from scoresde.training.checkpoint import load_checkpoint

    torch.manual_seed(0)
    sde = VPSDE(schedule=LearnedLogSNR(hidden=16, generator=torch.Generator().manual_seed(0)))
    model = ScoreModel(ResidualMLP(2, hidden=32, depth=2), sde)
    assert model_config(model) is None  # its schedule would be missing from the state dict
    model.add_module("schedule", sde.schedule)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    train(model, VDMLoss(sde), get_dataset("8gaussians"), opt, steps=5, batch_size=64,
          out_dir=tmp_path, log_every=5, ckpt_every=5, progress=False)  # fmt: skip
    t = torch.linspace(1e-3, 1, 51)
    x = torch.randn(51, 2, generator=torch.Generator().manual_seed(1))
    raw = load_model(tmp_path / "checkpoint.pt", use_ema=False).model
    assert raw.sde.schedule is raw.schedule and raw.sde.config() == sde.config()
    for a, b in zip(raw.sde.marginal(t), sde.marginal(t), strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(raw.score_fn(x, t), model.score_fn(x, t))
    ema = load_model(tmp_path / "checkpoint.pt").model
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["ema"]["module.schedule.raw_w2"]
    assert torch.equal(ema.schedule.raw_w2, saved) and not torch.equal(saved, sde.schedule.raw_w2)
