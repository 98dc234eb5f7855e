"""The formula mutations of ``benchmarks/mutation.py``: each one a wrong formula that some fast
test must catch. ``file`` is where the snippet lives today (a hint: the runner searches the whole
package if it moved); ``tests`` is the pytest selection that must fail.

The first five are the mutations that once passed the whole suite (issue 11).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    """One formula mutation: replace ``old`` by ``new`` in ``file``; ``tests`` must then fail."""

    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


S, T, SDE, LIK = "scoresde/samplers/", "tests/", "scoresde/sde/", "scoresde/likelihood/"
REF_SDE, REF_LANGEVIN = T + "test_reference_sde.py", T + "test_reference_langevin.py"
ORDERS, CORNERS = T + "test_samplers_orders.py", T + "test_reference_corners.py"
LIKE, LOSSES = T + "test_reference_likelihood.py", T + "test_losses.py"
PP2M = (
    ORDERS + "::test_dpm_solver_pp_2m_multistep_step_has_local_order_3_after_an_abrupt_ratio_change"
)
EMA = T + "test_training.py::test_ema_weights_are_the_closed_form_weighted_average"

# fmt: off
_TABLE: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # -- the five that once survived the whole suite ------------------------------------------
    ("torchsde: PF drift f - g^2/2 s instead of the reverse drift", S + "torchsde_backend.py",
     "return reverse_drift(sde.drift(x, t), sde.g2(t), run.score(x, t))",
     "return reverse_drift(sde.drift(x, t), sde.g2(t), run.score(x, t), probability_flow=True)",
     (REF_SDE,)),
    ("langevin: noise sqrt(2e) -> sqrt(e)", S + "langevin.py",
     "append_dims(torch.sqrt(2 * e), x.ndim) * z", "append_dims(torch.sqrt(e), x.ndim) * z",
     (REF_LANGEVIN,)),
    ("langevin: snr step size halved (per-sample rule)", S + "langevin.py",
     "return 2 * ratio * snr**2 * _sq_norms(z) / s2.clamp_min(1e-300)",
     "return ratio * snr**2 * _sq_norms(z) / s2.clamp_min(1e-300)", (REF_LANGEVIN,)),
    ("langevin: snr step size halved (snr_dim rule, the default)", S + "langevin.py",
     "return 2 * ratio * snr**2 * d / torch.maximum(s2, d / sigma_t**2)",
     "return ratio * snr**2 * d / torch.maximum(s2, d / sigma_t**2)", (REF_LANGEVIN,)),
    ("ema: decay d -> 1 - d", "scoresde/training/steps.py",
     "get_ema_multi_avg_fn(ema_decay)", "get_ema_multi_avg_fn(1 - ema_decay)", (EMA,)),
    ("dpm++2m: step ratio inverted", S + "dpm_solver.py",
     "r = h[i - 1] / h[i]", "r = h[i] / h[i - 1]", (PP2M,)),
    # -- reverse-SDE samplers ------------------------------------------------------------------
    ("euler_maruyama: g^2/2 in the score term", S + "reverse_sde.py",
     "c_x, c_s = drift_coefs(c.a[:-1], c.g2[:-1])",
     "c_x, c_s = drift_coefs(c.a[:-1], c.g2[:-1], probability_flow=True)", (REF_SDE,)),
    ("euler_maruyama: noise g sqrt|dt| -> g |dt|", S + "reverse_sde.py",
     "torch.sqrt(-c.g2[:-1] * dt)", "torch.sqrt(c.g2[:-1]) * -dt", (REF_SDE,)),
    ("ddpm: beta and beta_tilde swapped", S + "reverse_sde.py",
     'var = table.beta_tildes if variance == "beta_tilde" else table.betas',
     'var = table.betas if variance == "beta_tilde" else table.beta_tildes', (REF_SDE, CORNERS)),
    ("ancestral: x0 and x_t coefficients swapped", S + "reverse_sde.py",
     "return c_x0[i] * x0 + c_xt[i] * x + std[i] * z",
     "return c_xt[i] * x0 + c_x0[i] * x + std[i] * z", (REF_SDE,)),
    ("smld: posterior std without / sigma_i^2", S + "reverse_sde.py",
     "sqrt_pos(s2_next * (s2 - s2_next) / s2)", "sqrt_pos(s2 - s2_next)", (REF_SDE, CORNERS)),
    ("tweedie: x0 = (x + sigma s) / alpha", S + "run.py",
     "return (x + sigma**2 * s) / alpha", "return (x + sigma * s) / alpha", (REF_SDE, CORNERS)),
    # -- correctors ------------------------------------------------------------------------------
    ("langevin: sigma at t_i instead of t_{i+1}", S + "langevin.py",
     "t, sig = run.t[i + 1], c.sigma[i + 1]", "t, sig = run.t[i + 1], c.sigma[i]",
     (REF_LANGEVIN,)),
    ("mala: proposal density variance e instead of 2e", S + "langevin.py",
     "return -_sq_norms(x_to - x - e_ * s) / (4 * e)", "return -_sq_norms(x_to - x - e_ * s) / (2 * e)",
     (T + "test_langevin.py",)),
    ("langevin: ratio r inverted", S + "langevin.py",
     "ratio = (c.alpha[:-1] / c.alpha[1:]) ** 2", "ratio = (c.alpha[1:] / c.alpha[:-1]) ** 2",
     (REF_LANGEVIN,)),
    # -- ODE samplers ------------------------------------------------------------------------------
    ("pf: full g^2 in the PF field", S + "ode.py",
     "drift_coefs(c.a, c.g2, probability_flow=True)", "drift_coefs(c.a, c.g2)", (ORDERS, CORNERS)),
    ("heun: weights 1/4, 3/4", S + "ode.py",
     '"heun": ([0.0, 1.0], [[], [1.0]], [0.5, 0.5])',
     '"heun": ([0.0, 1.0], [[], [1.0]], [0.25, 0.75])', (ORDERS,)),
    ("rk4: weights 1/6 1/6 1/2 1/6", S + "ode.py",
     "[1 / 6, 1 / 3, 1 / 3, 1 / 6]", "[1 / 6, 1 / 6, 1 / 2, 1 / 6]", (ORDERS,)),
    ("dpm1: e^{-h} - 1 instead of e^h - 1", S + "dpm_solver.py",
     "x_t = (a_t / a_s) * x - sig_t * torch.expm1(hi) * e_s",
     "x_t = (a_t / a_s) * x + sig_t * torch.expm1(-hi) * e_s", (ORDERS,)),
    ("dpm2: correction / r1 instead of / 2 r1", S + "dpm_solver.py",
     "return x_t - sig_t / (2 * r[0]) * torch.expm1(hi) * d1",
     "return x_t - sig_t / r[0] * torch.expm1(hi) * d1", (ORDERS,)),
    ("dpm3: phi_2 dropped in the last correction", S + "dpm_solver.py",
     "return x_t - sig_t / r[1] * (torch.expm1(hi) / hi - 1) * d2",
     "return x_t - sig_t / r[1] * torch.expm1(hi) * d2", (ORDERS,)),
    ("dpm++2m: alpha_i instead of alpha_{i+1}", S + "dpm_solver.py",
     "- c.alpha[i + 1] * torch.expm1(-h[i]) * d", "- c.alpha[i] * torch.expm1(-h[i]) * d",
     (ORDERS,)),
    ("ddim: eps coefficient sigma_t instead of sqrt(sigma_t^2 - c^2)", S + "ddim.py",
     "eps_coef = sqrt_pos(s_t**2 - noise_std**2)", "eps_coef = s_t", (CORNERS,)),
    ("ddim: posterior variance without (alpha_s / alpha_t)^2", S + "ddim.py",
     "torch.clamp(s_s**2 - (a_s / a_t) ** 2 * s_t**2, min=0.0)",
     "torch.clamp(s_s**2 - s_t**2, min=0.0)", (CORNERS,)),
    ("inpaint: known part alpha x + sigma z -> x + sigma z", S + "hooks.py",
     "known = alpha * self.x_known.to(x) + sigma * randn_like(x)",
     "known = self.x_known.to(x) + sigma * randn_like(x)", (CORNERS,)),
    # -- SDEs ----------------------------------------------------------------------------------------
    ("one home: reverse-drift score weight 1 -> 1/2", SDE + "reverse.py",
     "return 0.5 if probability_flow else 1.0", "return 0.5 if probability_flow else 0.5",
     (REF_SDE,)),
    ("one home: PF score weight 1/2 -> 1", SDE + "reverse.py",
     "return 0.5 if probability_flow else 1.0", "return 1.0 if probability_flow else 1.0",
     (ORDERS,)),
    ("reverse object: PF drift", SDE + "reverse.py",
     "return reverse_drift(self.sde.drift(x, tt), self.sde.g2(tt), self.score_fn(x, tt))",
     "return probability_flow_drift(self.sde.drift(x, tt), self.sde.g2(tt), self.score_fn(x, tt))",
     (REF_SDE,)),
    ("probability-flow object: reverse drift", SDE + "reverse.py",
     "return probability_flow_drift(self.sde.drift(x, tt), self.sde.g2(tt), self.score_fn(x, tt))",
     "return reverse_drift(self.sde.drift(x, tt), self.sde.g2(tt), self.score_fn(x, tt))",
     (REF_SDE,)),
    ("reverse chain object: G^2/2 s", SDE + "reverse.py",
     "rev_f = append_dims(G, x.ndim) ** 2 * self.score_fn(x, tt) - f",
     "rev_f = 0.5 * append_dims(G, x.ndim) ** 2 * self.score_fn(x, tt) - f", (REF_SDE,)),
    ("subvp: g^2 with exp(-B) instead of exp(-2B)", SDE + "vp.py",
     "return self._beta(t) * -torch.expm1(-2 * self._B(t))",
     "return self._beta(t) * -torch.expm1(-self._B(t))", (REF_SDE,)),
    ("vp discretize: (1 - beta) - 1 instead of sqrt(1 - beta) - 1", SDE + "vp.py",
     "torch.expm1(0.5 * torch.log1p(-beta_i))", "torch.expm1(torch.log1p(-beta_i))", (REF_SDE,)),
    ("ddpm table: beta_tilde without (1 - alpha_bar_prev)", SDE + "ddpm.py",
     "beta_tildes=(1 - prev) / one_minus * betas,", "beta_tildes=betas / one_minus * betas,",
     (REF_SDE,)),
    # -- losses --------------------------------------------------------------------------------------
    ("dsm: likelihood weight g^2 / sigma", "scoresde/losses/dsm.py",
     "return self.sde.g2(t) / sigma**2", "return self.sde.g2(t) / sigma", (LOSSES,)),
    ("dsm: min_snr clamps from below", "scoresde/losses/dsm.py",
     "return torch.clamp(snr, max=self.gamma) / snr",
     "return torch.clamp(snr, min=self.gamma) / snr", (LOSSES,)),
    ("dsm: importance weight without sigma^2", "scoresde/losses/dsm.py",
     "return Z * sigma**2 / ((self.sde.T - self.sde.eps) * self.sde.g2(t))",
     "return Z / ((self.sde.T - self.sde.eps) * self.sde.g2(t))", (LOSSES,)),
    # -- likelihood ------------------------------------------------------------------------------------
    ("bpd: cell volume log(levels) dropped", LIK + "bpd.py",
     "log_det = D * (math.log(hi - lo) - math.log(levels))",
     "log_det = D * math.log(hi - lo)", (LIKE,)),
    ("elbo: div f term dropped", LIK + "bounds.py",
     "integrand = g2 * (2 * div_s + s.flatten(1).pow(2).sum(1)) - 2 * a * D",
     "integrand = g2 * (2 * div_s + s.flatten(1).pow(2).sum(1))", (LIKE,)),
    ("ddpm_vlb: beta_tilde decoder variance uses beta_0", LIK + "bounds.py",
     'var[0] = sc["beta_tildes"][1] if N > 1 else sc["betas"][0]',
     'var[0] = sc["betas"][0]', (LIKE,)),
    ("ode likelihood: -g^2 div s instead of -g^2/2", LIK + "coordinates.py",
     "drift_coefs(sde.drift_coef(t), sde.g2(t), probability_flow=True)",
     "drift_coefs(sde.drift_coef(t), sde.g2(t))", (T + "test_likelihood.py",)),
]
# fmt: on

MUTATIONS: list[Mutation] = [Mutation(*row) for row in _TABLE]
