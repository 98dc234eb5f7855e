"""Sample quality against NFE for every registered sampler, on 2-D and 16-D Gaussian mixtures.

For each sampler and NFE in {5, 10, 20, 50, 100} (the largest reachable NFE <= the target, on the
sampler's default grid), with the exact score of the mixture, prints

* SW2: sliced Wasserstein-2 between the samples and as many exact samples, next to the two-sample
  noise floor (SW2 between two independent exact sample sets of that size);
* CE gap: mean(-log p0(samples)) - H(p0), H(p0) estimated by Monte Carlo from 200k exact samples
  (>= 0 for exact samples up to Monte Carlo error; a negative gap means over-concentrated
  samples, so the goal uses |gap|).

Ratios against baselines measured in the same run: each SW2 over the noise floor ("xfloor"),
and in the summary the best deterministic sampler against Euler–Maruyama (the baseline) at the
same NFE.

Goals (issue 3): at NFE 10 the best deterministic sampler is within the noise floor in 2-D; at
NFE 20 its CE gap is within 0.1 nats in 16-D.

    python benchmarks/sampler_quality.py [--n 4000] [--threads 1]
"""

from __future__ import annotations

import argparse
import math

import torch

from scoresde import VESDE, VPSDE, GaussianMixture
from scoresde.samplers import SAMPLERS, grid_for_nfe, make_grid, sample

NFES = (5, 10, 20, 50, 100)


def sliced_w2(x: torch.Tensor, y: torch.Tensor, n_proj: int = 512, seed: int = 0) -> float:
    """Sliced Wasserstein-2 between equal-size samples (sorted random 1-D projections)."""
    theta = torch.randn(
        x.shape[1], n_proj, generator=torch.Generator().manual_seed(seed), dtype=x.dtype
    )
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, py = torch.sort(x @ theta, dim=0).values, torch.sort(y @ theta, dim=0).values
    return float(((px - py) ** 2).mean().sqrt())


def mixtures() -> dict[str, GaussianMixture]:
    g = torch.Generator().manual_seed(0)
    two = GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.5, -0.5]], [[0.2, 0.1], [0.3, 0.4]])
    means = 1.5 * torch.randn(4, 16, generator=g, dtype=torch.float64)
    var = 0.1 + 0.4 * torch.rand(4, 16, generator=g, dtype=torch.float64)
    return {"2-D": two, "16-D": GaussianMixture([0.1, 0.2, 0.3, 0.4], means, var)}


def run_one(name: str, sde, gm: GaussianMixture, x_T: torch.Tensor, nfe: int) -> tuple[torch.Tensor, int]:  # fmt: skip
    g = torch.Generator().manual_seed(1)
    if SAMPLERS[name].adaptive:  # the NFE axis becomes a tolerance for adaptive solvers
        tol = {5: 1e-1, 10: 3e-2, 20: 1e-2, 50: 1e-3, 100: 1e-4}[nfe]
        x, info = sample(name, sde, gm, x_T, make_grid(sde, 1), rtol=tol, atol=tol)
        return x, info.nfe
    grid = grid_for_nfe(sde, name, nfe, exact=False)
    x, info = sample(name, sde, gm, x_T, grid, generator=g)
    return x, info.nfe


def study(label: str, gm0: GaussianMixture, n: int) -> dict[tuple[str, int], tuple[float, float]]:
    sdes = {"vp": VPSDE(eps=1e-3), "ve": VESDE(sigma_max=30.0, eps=1e-3)}
    ref = gm0.sample(n, torch.Generator().manual_seed(2))
    big = gm0.sample(200_000, torch.Generator().manual_seed(3))
    entropy = float(-gm0.log_prob(big).mean())
    floor = (
        sum(sliced_w2(gm0.sample(n, torch.Generator().manual_seed(10 + k)), ref) for k in range(3))
        / 3
    )
    print(f"\n== {label}: n={n}, H(p0)={entropy:.4f} nats, SW2 noise floor={floor:.4f}")
    print(
        f"{'sampler':18s} {'sde':3s} "
        + " ".join(f"{'NFE':>4s} {'SW2':>7s} {'CEgap':>7s} {'xfloor':>6s}" for _ in NFES[:1])
    )
    out = {}
    for name, spec in SAMPLERS.items():
        sde_name = "vp" if spec.supports(sdes["vp"]) else "ve"
        sde = sdes[sde_name]
        gm = gm0.with_sde(sde)
        x_T = sde.prior_sample((n, gm0.dim), torch.Generator().manual_seed(4), dtype=torch.float64)
        for nfe in NFES:
            try:
                x, used = run_one(name, sde, gm, x_T, nfe)
            except ValueError as err:  # e.g. reverse diffusion needs beta(t) dt < 1
                print(f"{name:18s} {sde_name:3s} {nfe:4d}  skipped: {str(err)[:60]}")
                continue
            ce = (
                float(-gm0.log_prob(x).mean()) - entropy
                if bool(torch.isfinite(x).all())
                else math.inf
            )
            sw = sliced_w2(x, ref)
            out[(name, nfe)] = (sw, ce)
            print(f"{name:18s} {sde_name:3s} {used:4d} {sw:7.4f} {ce:7.3f} {sw / floor:6.2f}")
    return out | {("__floor__", 0): (floor, 0.0)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    res = {label: study(label, gm, a.n) for label, gm in mixtures().items()}
    det = [k for k, s in SAMPLERS.items() if not s.stochastic]
    floor = res["2-D"][("__floor__", 0)][0]
    best2 = min((res["2-D"][(k, 10)][0], k) for k in det if (k, 10) in res["2-D"])
    best16 = min((abs(res["16-D"][(k, 20)][1]), k) for k in det if (k, 20) in res["16-D"])
    em2, em16 = res["2-D"].get(("euler_maruyama", 10)), res["16-D"].get(("euler_maruyama", 20))
    print(f"\nthreads={torch.get_num_threads()}; ratios against baselines measured in this run")
    print(f"Goal 1, 2-D at NFE 10: best deterministic {best2[1]} SW2={best2[0]:.4f} = "
          f"{best2[0] / floor:.2f} x floor ({floor:.4f})"
          + (f", {best2[0] / em2[0]:.2f} x Euler-Maruyama" if em2 else "")
          + f" -> {'MET' if best2[0] <= floor else 'NOT MET'}")  # fmt: skip
    print(f"Goal 2, 16-D at NFE 20: best deterministic {best16[1]} |CE gap|={best16[0]:.4f} nats"
          + (f" = {best16[0] / max(abs(em16[1]), 1e-12):.2f} x Euler-Maruyama's" if em16 else "")
          + f" -> {'MET' if best16[0] <= 0.1 else 'NOT MET'}")  # fmt: skip


if __name__ == "__main__":
    main()
