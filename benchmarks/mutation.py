"""Mutation testing of the core formulas: does a fast test fail when a formula is wrong?

Each mutation is (name, file, exact old snippet, new snippet, test selection). The script copies
the working tree (tracked and untracked, not ignored files) to a temporary folder once, then for
each mutation writes the mutated file there, runs the selected fast tests with ``pytest -x``, and
restores the file. A mutation is *caught* when the tests fail, *survived* when they pass. The
worktree itself is never modified.

Snippets are located robustly, since modules move: first in the named file, else anywhere under
``scoresde/``, exactly, then up to whitespace (a reformatted line still matches). A snippet that
is not found, or found more than once, is an error that stops the run before any test runs.

Not run in CI. Usage (one pytest at a time; ~10-20 min on 2 cores):

    python benchmarks/mutation.py               # every mutation
    python benchmarks/mutation.py --check       # only locate the snippets
    python benchmarks/mutation.py -k langevin   # mutations whose name contains 'langevin'

Exit status: 0 when every mutation is caught, 1 when some survive, 2 on a missing snippet.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # where the snippet lives today (a hint: the whole package is searched if it moved)
    old: str
    new: str
    tests: tuple[str, ...]


def M(name: str, file: str, old: str, new: str, *tests: str) -> Mutation:  # noqa: N802
    return Mutation(name, file, old, new, tuple(tests))


S, T = "scoresde/samplers/", "tests/"
REF_SDE, REF_LANGEVIN = T + "test_reference_sde.py", T + "test_reference_langevin.py"
ORDERS, MARGINALS = T + "test_samplers_orders.py", T + "test_samplers_marginals.py"
CORNERS, LIKE = T + "test_reference_corners.py", T + "test_reference_likelihood.py"

MUTATIONS: list[Mutation] = [
    # -- the five that once survived the whole suite ------------------------------------------
    M(
        "torchsde: PF drift f - g^2/2 s instead of the reverse drift",
        S + "sde_backend.py",
        "return sde.drift_coef(t) * x - sde.g2(t) * run.score(x, t)",
        "return sde.drift_coef(t) * x - 0.5 * sde.g2(t) * run.score(x, t)",
        REF_SDE,
    ),
    M(
        "langevin: noise sqrt(2e) -> sqrt(e)",
        S + "langevin.py",
        "x = x + e * s + torch.sqrt(2 * e) * z",
        "x = x + e * s + torch.sqrt(e) * z",
        REF_LANGEVIN,
    ),
    M(
        "langevin: snr step size halved",
        S + "langevin.py",
        "e = append_dims(2 * ratio[i] * (snr * z_norm / s_norm) ** 2, x.ndim)",
        "e = append_dims(ratio[i] * (snr * z_norm / s_norm) ** 2, x.ndim)",
        REF_LANGEVIN,
    ),
    M(
        "ema: decay d -> 1 - d",
        "scoresde/training.py",
        "get_ema_multi_avg_fn(config.optim.ema_decay)",
        "get_ema_multi_avg_fn(1 - config.optim.ema_decay)",
        T + "test_training.py::test_ema_weights_are_the_closed_form_weighted_average",
    ),
    M(
        "dpm++2m: step ratio inverted",
        S + "dpm_solver.py",
        "r = h[i - 1] / h[i]",
        "r = h[i] / h[i - 1]",
        ORDERS + "::test_dpm_solver_pp_2m_is_second_order_on_grids_with_abrupt_step_ratios",
    ),
    # -- reverse-SDE samplers ------------------------------------------------------------------
    M(
        "euler_maruyama: g^2/2 in the score term",
        S + "sde_samplers.py",
        "keep, k_s, k_z = 1 + c.a[:-1] * dt, -c.g2[:-1] * dt,",
        "keep, k_s, k_z = 1 + c.a[:-1] * dt, -0.5 * c.g2[:-1] * dt,",
        REF_SDE,
    ),
    M(
        "euler_maruyama: noise sqrt(|dt|) -> |dt|",
        S + "sde_samplers.py",
        "torch.sqrt(-c.g2[:-1] * dt)",
        "torch.sqrt(c.g2[:-1]) * -dt",
        REF_SDE,
    ),
    M(
        "reverse_diffusion: G^2/2 s",
        S + "sde_samplers.py",
        "return x - f + G**2 * s + G * z",
        "return x - f + 0.5 * G**2 * s + G * z",
        REF_SDE,
    ),
    M(
        "ddpm: beta and beta_tilde swapped",
        S + "sde_samplers.py",
        'var = table.beta_tildes if variance == "beta_tilde" else table.betas',
        'var = table.betas if variance == "beta_tilde" else table.beta_tildes',
        REF_SDE,
    ),
    M(
        "ancestral: x0 and x_t coefficients swapped",
        S + "sde_samplers.py",
        "return c_x0[i] * x0 + c_xt[i] * x + std[i] * z",
        "return c_xt[i] * x0 + c_x0[i] * x + std[i] * z",
        REF_SDE,
    ),
    M(
        "smld: posterior std without / sigma_i^2",
        S + "sde_samplers.py",
        "sqrt_pos(s2_next * (s2 - s2_next) / s2)",
        "sqrt_pos(s2 - s2_next)",
        REF_SDE,
    ),
    M(
        "tweedie: x0 = (x + sigma s) / alpha",
        S + "_core.py",
        "return (x + sigma**2 * s) / alpha",
        "return (x + sigma * s) / alpha",
        REF_SDE,
        CORNERS,
    ),
    # -- correctors ------------------------------------------------------------------------------
    M(
        "ald: sigma at t_i instead of t_{i+1}",
        S + "langevin.py",
        "ald_step = 2 * ratio * (snr * c.sigma[1:]) ** 2",
        "ald_step = 2 * ratio * (snr * c.sigma[:-1]) ** 2",
        REF_LANGEVIN,
    ),
    M(
        "langevin: ratio r inverted",
        S + "langevin.py",
        "ratio = (c.alpha[:-1] / c.alpha[1:]) ** 2",
        "ratio = (c.alpha[1:] / c.alpha[:-1]) ** 2",
        REF_LANGEVIN,
    ),
    # -- ODE samplers ------------------------------------------------------------------------------
    M(
        "pf: full g^2 in the PF field",
        S + "ode.py",
        "0.5 * c.g2.reshape(stage_t.shape)",
        "1.0 * c.g2.reshape(stage_t.shape)",
        ORDERS,
        CORNERS,
    ),
    M(
        "heun: weights 1/4, 3/4",
        S + "ode.py",
        '"heun": ([0.0, 1.0], [[], [1.0]], [0.5, 0.5])',
        '"heun": ([0.0, 1.0], [[], [1.0]], [0.25, 0.75])',
        ORDERS,
    ),
    M(
        "rk4: weights 1/6 1/6 1/2 1/6",
        S + "ode.py",
        "[1 / 6, 1 / 3, 1 / 3, 1 / 6]",
        "[1 / 6, 1 / 6, 1 / 2, 1 / 6]",
        ORDERS,
    ),
    M(
        "dpm1: e^{-h} - 1 instead of e^h - 1",
        S + "dpm_solver.py",
        "x_t = (a_t / a_s) * x - sig_t * torch.expm1(hi) * e_s",
        "x_t = (a_t / a_s) * x + sig_t * torch.expm1(-hi) * e_s",
        ORDERS,
    ),
    M(
        "dpm2: correction / r1 instead of / 2 r1",
        S + "dpm_solver.py",
        "return x_t - sig_t / (2 * r[0]) * torch.expm1(hi) * d1",
        "return x_t - sig_t / r[0] * torch.expm1(hi) * d1",
        ORDERS,
    ),
    M(
        "dpm3: phi_2 dropped in the last correction",
        S + "dpm_solver.py",
        "return x_t - sig_t / r[1] * (torch.expm1(hi) / hi - 1) * d2",
        "return x_t - sig_t / r[1] * torch.expm1(hi) * d2",
        ORDERS,
    ),
    M(
        "dpm++2m: alpha_i instead of alpha_{i+1}",
        S + "dpm_solver.py",
        "- c.alpha[i + 1] * torch.expm1(-h[i]) * d",
        "- c.alpha[i] * torch.expm1(-h[i]) * d",
        ORDERS,
    ),
    M(
        "ddim: eps coefficient sigma_t instead of sqrt(sigma_t^2 - c^2)",
        S + "ddim.py",
        "eps_coef = sqrt_pos(s_t**2 - noise_std**2)",
        "eps_coef = s_t",
        CORNERS,
    ),
    M(
        "ddim: posterior variance without (alpha_s / alpha_t)^2",
        S + "ddim.py",
        "torch.clamp(s_s**2 - (a_s / a_t) ** 2 * s_t**2, min=0.0)",
        "torch.clamp(s_s**2 - s_t**2, min=0.0)",
        CORNERS,
    ),
    M(
        "inpaint: known part alpha x + sigma z -> x + sigma z",
        S + "hooks.py",
        "known = alpha * self.x_known.to(x) + sigma * randn_like(x)",
        "known = self.x_known.to(x) + sigma * randn_like(x)",
        CORNERS,
    ),
    # -- SDEs ----------------------------------------------------------------------------------------
    M(
        "reverse object: g^2/2",
        "scoresde/sde/reverse.py",
        "return self.sde.drift(x, tt) - g2 * self.score_fn(x, tt)",
        "return self.sde.drift(x, tt) - 0.5 * g2 * self.score_fn(x, tt)",
        REF_SDE,
    ),
    M(
        "probability-flow object: g^2",
        "scoresde/sde/reverse.py",
        "return self.sde.drift(x, tt) - 0.5 * g2 * self.score_fn(x, tt)",
        "return self.sde.drift(x, tt) - g2 * self.score_fn(x, tt)",
        REF_SDE,
    ),
    M(
        "subvp: g^2 with exp(-B) instead of exp(-2B)",
        "scoresde/sde/vp.py",
        "return self._beta(t) * -torch.expm1(-2 * self._B(t))",
        "return self._beta(t) * -torch.expm1(-self._B(t))",
        REF_SDE,
    ),
    M(
        "vp discretize: f = (1 - beta - 1) x instead of (sqrt(1 - beta) - 1) x",
        "scoresde/sde/vp.py",
        "torch.expm1(0.5 * torch.log1p(-beta_i))",
        "torch.expm1(torch.log1p(-beta_i))",
        REF_SDE,
    ),
    M(
        "ddpm table: beta_tilde without (1 - alpha_bar_prev)",
        "scoresde/sde/ddpm.py",
        "beta_tildes=(1 - prev) / one_minus * betas,",
        "beta_tildes=betas / one_minus * betas,",
        REF_SDE,
    ),
    # -- losses --------------------------------------------------------------------------------------
    M(
        "dsm: likelihood weight g^2 / sigma",
        "scoresde/losses.py",
        "return self.sde.g2(t) / sigma**2",
        "return self.sde.g2(t) / sigma",
        T + "test_losses.py",
    ),
    M(
        "dsm: min_snr clamps from below",
        "scoresde/losses.py",
        "return torch.clamp(snr, max=self.gamma) / snr",
        "return torch.clamp(snr, min=self.gamma) / snr",
        T + "test_losses.py",
    ),
    M(
        "dsm: importance weight without sigma^2",
        "scoresde/losses.py",
        "return Z * sigma**2 / ((self.sde.T - self.sde.eps) * self.sde.g2(t))",
        "return Z / ((self.sde.T - self.sde.eps) * self.sde.g2(t))",
        T + "test_losses.py",
    ),
    # -- likelihood ------------------------------------------------------------------------------------
    M(
        "bpd: cell volume log(levels) dropped",
        "scoresde/likelihood/bpd.py",
        "log_det = D * (math.log(hi - lo) - math.log(levels))",
        "log_det = D * math.log(hi - lo)",
        LIKE,
    ),
    M(
        "elbo: div f term dropped",
        "scoresde/likelihood/bounds.py",
        "integrand = g2 * (2 * div_s + s.flatten(1).pow(2).sum(1)) - 2 * a * D",
        "integrand = g2 * (2 * div_s + s.flatten(1).pow(2).sum(1))",
        LIKE,
    ),
    M(
        "ddpm_vlb: beta_tilde decoder variance uses beta_tilde_0",
        "scoresde/likelihood/bounds.py",
        'var[0] = sc["beta_tildes"][1] if N > 1 else sc["betas"][0]',
        'var[0] = sc["betas"][0]',
        LIKE,
    ),
    M(
        "ode likelihood: -g^2 div s instead of -g^2/2",
        "scoresde/likelihood/coordinates.py",
        "return t, one, sde.drift_coef(t).to(r.dtype), -0.5 * sde.g2(t).to(r.dtype)",
        "return t, one, sde.drift_coef(t).to(r.dtype), -1.0 * sde.g2(t).to(r.dtype)",
        LIKE,
    ),
]


def _files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root,
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return [f for f in out.splitlines() if (root / f).is_file()]


def _pattern(snippet: str) -> re.Pattern[str]:
    """The snippet with any run of whitespace (or none, around punctuation) matching any other."""
    tokens = re.findall(r"\w+|[^\w\s]", snippet)
    return re.compile(r"\s*".join(re.escape(t) for t in tokens))


def locate(mut: Mutation, root: Path) -> tuple[str, int, int]:
    """(file, start, end) of the one occurrence of ``mut.old``; ValueError otherwise."""
    hint = root / mut.file
    candidates = [mut.file] if hint.is_file() else []
    candidates += sorted(str(p.relative_to(root)) for p in (root / "scoresde").rglob("*.py"))
    for matcher in ("exact", "whitespace"):
        for rel in dict.fromkeys(candidates):
            text = (root / rel).read_text()
            if matcher == "exact":
                spans = [(m.start(), m.end()) for m in re.finditer(re.escape(mut.old), text)]
            else:
                spans = [(m.start(), m.end()) for m in _pattern(mut.old).finditer(text)]
            if len(spans) > 1:
                raise ValueError(f"{mut.name}: snippet found {len(spans)} times in {rel}")
            if spans:
                return rel, *spans[0]
    raise ValueError(f"{mut.name}: snippet not found in {mut.file} nor anywhere under scoresde/:"
                     f"\n    {mut.old!r}")  # fmt: skip


def run_tests(root: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-p", "no:cacheprovider",
           "-m", "not slow"]  # fmt: skip
    t0 = time.perf_counter()
    try:
        rc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        rc = -1
    return rc, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-k", default="", help="only mutations whose name contains this")
    ap.add_argument("--check", action="store_true", help="only locate every snippet")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per pytest run")
    args = ap.parse_args()
    muts = [m for m in MUTATIONS if args.k in m.name]
    tmp = Path(tempfile.mkdtemp(prefix="scoresde-mutation-"))
    try:
        for rel in _files(ROOT):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, tmp / rel)
        try:
            spots = [locate(m, tmp) for m in muts]
        except ValueError as err:
            print(f"ERROR: {err}", file=sys.stderr)
            return 2
        for m in muts:
            missing = [t for t in m.tests if not (tmp / t.split("::")[0]).is_file()]
            if missing:
                print(f"ERROR: {m.name}: test file(s) not found: {missing}", file=sys.stderr)
                return 2
        print(f"{len(muts)} mutations located in a copy of the tree at {tmp}")
        if args.check:
            for m, (rel, *_) in zip(muts, spots, strict=True):
                print(f"  {m.name:<62} {rel}")
            return 0
        if not args.no_baseline:
            sel = tuple(dict.fromkeys(t for m in muts for t in m.tests))
            rc, sec = run_tests(tmp, sel, args.timeout)
            print(f"baseline (unmutated) {'passes' if rc == 0 else 'FAILS'} in {sec:.0f}s")
            if rc != 0:
                return 2
        survivors = []
        for m, (rel, start, end) in zip(muts, spots, strict=True):
            path = tmp / rel
            text = path.read_text()
            path.write_text(text[:start] + m.new + text[end:])
            try:
                rc, sec = run_tests(tmp, m.tests, args.timeout)
            finally:
                path.write_text(text)
            status = {0: "SURVIVED", 1: "caught", -1: "timeout"}.get(rc, f"caught (pytest rc={rc})")
            print(f"  {status:<10} {sec:5.0f}s  {m.name}  [{rel}]", flush=True)
            if rc == 0:
                survivors.append(m.name)
        print(f"{len(muts) - len(survivors)}/{len(muts)} caught; survivors: {survivors or 'none'}")
        return 1 if survivors else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
