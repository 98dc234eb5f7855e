"""Each SDE and schedule writes and reads its own settings: a bit-for-bit round trip through JSON
for every registered SDE and every registered schedule kind, and old checkpoints' configs."""

from __future__ import annotations

import json

import pytest
import torch

from scoresde.sde import (
    SCHEDULES,
    SDES,
    VESDE,
    VPSDE,
    BetaSchedule,
    CosineBeta,
    CustomBeta,
    GeometricSigma,
    LearnedLogSNR,
    LinearBeta,
    LinearSDE,
    LogSNRLinearBeta,
    Schedule,
    SqrtBeta,
    SubVPSDE,
    schedule_from_config,
    sde_from_config,
    shift_snr,
)


def _learned() -> LearnedLogSNR:
    sched = LearnedLogSNR(hidden=8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():  # as if trained: every parameter away from its initialisation
        for p in sched.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(4)))
    return sched


def _shifted() -> list[Schedule]:
    return [shift_snr(VPSDE(), 1.5).schedule, shift_snr(VESDE(), -0.7).schedule]


#: One or more non-default examples of every registered schedule kind.
EXAMPLES: dict[str, list[Schedule]] = {
    "linear": [LinearBeta(0.2, 15.0)],
    "cosine": [CosineBeta(0.01)],
    "sqrt": [SqrtBeta(2e-4)],
    "log_snr_linear": [LogSNRLinearBeta(15.0, -8.0)],
    "learned_log_snr": [_learned()],
    "geometric": [GeometricSigma(0.02, 30.0)],
    "snr_shift": _shifted(),
}


def test_every_registered_schedule_has_an_example() -> None:
    assert set(EXAMPLES) == set(SCHEDULES)


def _sdes(schedule: Schedule) -> list[LinearSDE]:
    if isinstance(schedule, BetaSchedule):
        sub = [SubVPSDE(schedule=schedule, eps=1e-4)] if schedule.kind != "snr_shift" else []
        return [VPSDE(schedule=schedule, eps=1e-4), *sub]
    return [VESDE(schedule=schedule, T=0.9, eps=1e-4)]


def _assert_same(a: LinearSDE, b: LinearSDE) -> None:
    assert type(a) is type(b) and a.to_config() == b.to_config()
    assert (a.T, a.eps, a.prior_std) == (b.T, b.eps, b.prior_std)
    t = torch.linspace(a.eps, a.T, 33, dtype=torch.float64)
    for x, y in zip(a.marginal(t), b.marginal(t), strict=True):
        assert torch.equal(x, y)
    assert torch.equal(a.g2(t), b.g2(t)) and torch.equal(a.drift_coef(t), b.drift_coef(t))
    lam = a.log_snr(t)
    assert torch.equal(lam, b.log_snr(t))
    assert torch.equal(a.t_from_log_snr(lam), b.t_from_log_snr(lam))


@pytest.mark.parametrize(
    "schedule", [s for kind in sorted(EXAMPLES) for s in EXAMPLES[kind]], ids=repr
)
def test_sde_and_schedule_round_trip_bit_for_bit(schedule: Schedule) -> None:
    for sde in _sdes(schedule):
        back = sde_from_config(json.loads(json.dumps(sde.to_config())))
        if isinstance(schedule, LearnedLogSNR):  # the weights are state: the state dict
            assert isinstance(back.schedule, LearnedLogSNR)
            back.schedule.load_state_dict(schedule.state_dict())
        _assert_same(sde, back)
        again = schedule_from_config(json.loads(json.dumps(schedule.to_config())))
        assert type(again) is type(schedule) and again.to_config() == schedule.to_config()


@pytest.mark.parametrize("name", sorted(SDES))
def test_every_registered_sde_round_trips_at_its_defaults(name: str) -> None:
    sde = SDES[name]()
    _assert_same(sde, SDES[name].from_config(json.loads(json.dumps(sde.to_config()))))


def test_configs_stored_by_older_checkpoints_still_load() -> None:
    vp = {
        "name": "vp",
        "schedule": {"kind": "linear", "beta_min": 0.1, "beta_max": 20.0},
        "T": 1.0,
        "eps": 1e-5,
    }
    _assert_same(sde_from_config(vp), VPSDE())
    ve = {
        "name": "ve",
        "schedule": {"kind": "geometric", "sigma_min": 0.01, "sigma_max": 50.0},
        "T": 1.0,
        "eps": 1e-5,
    }
    _assert_same(sde_from_config(ve), VESDE())
    cos = {"name": "subvp", "schedule": {"kind": "cosine", "s": 0.008}, "T": 0.9946, "eps": 1e-5}
    _assert_same(sde_from_config(cos), SubVPSDE(schedule="cosine"))


def test_unreadable_settings_fail_clearly() -> None:
    custom = VPSDE(schedule=CustomBeta(lambda t: 0 * t + 1, lambda t: t))
    with pytest.raises(ValueError, match="cannot rebuild a schedule of kind 'CustomBeta'"):
        sde_from_config(custom.to_config())
    with pytest.raises(ValueError, match="'name' is one of 'subvp', 've', 'vp'"):
        sde_from_config({"name": "vq"})
    with pytest.raises(ValueError, match="expected a dict with name 'vp'"):
        VPSDE.from_config({"name": "vp", "beta": 3})
    with pytest.raises(ValueError, match="LinearBeta.from_config"):
        schedule_from_config({"kind": "linear", "beta_lo": 0.1})
