"""The modern fast solvers at 5, 10 and 20 NFE: which grid, order and final-step rule is best.

On the 2-D 8-Gaussians (FFJORD's, as an exact mixture) and a 16-D 4-component mixture under the
VP SDE (beta 0.1-20, eps 1e-3), with the exact score and the same x_T for every configuration,
prints sliced W2 (against as many exact samples) and the cross-entropy gap
mean(-log p0(samples)) - H(p0) (0 for exact samples; the header gives its noise: the gap of
as many exact samples, with its standard error).
Each configuration spends exactly the NFE (``grid_for_nfe(exact=False)``: EDM gets 2N - 1 <= NFE).

    python benchmarks/fast_solvers.py [--n 10000] [--threads 1] [--nfe 5 10 20]
        [--grids log_snr karras quadratic uniform] [--only "edm heun" ...]
"""

from __future__ import annotations

import argparse
import math

import torch

from scoresde import VPSDE, GaussianMixture
from scoresde.metrics import cross_entropy_gap
from scoresde.samplers import grid_for_nfe, sample

#: (label, registry name, options) of every configuration measured.
CONFIGS: list[tuple[str, str, dict]] = [
    ("ddim", "ddim", {}),
    ("dpm++2m", "dpm_solver_pp_2m", {}),
    ("dpm++3m", "dpm_solver_pp_3m", {}),
    ("dpm++3m no-lof", "dpm_solver_pp_3m", {"lower_order_final": False}),
    ("unipc p1 bh1", "unipc", {"order": 1, "variant": "bh1"}),
    ("unipc p2 bh1", "unipc", {"order": 2, "variant": "bh1"}),
    ("unipc p2 bh2", "unipc", {"order": 2, "variant": "bh2"}),
    ("unipc p3 bh1", "unipc", {"order": 3, "variant": "bh1"}),
    ("unipc p3 bh2", "unipc", {"order": 3, "variant": "bh2"}),
    ("unipc p2 bh2 no-lof", "unipc", {"order": 2, "lower_order_final": False}),
    ("deis 2", "deis", {"order": 2}),
    ("deis 3", "deis", {"order": 3}),
    ("deis 4", "deis", {"order": 4}),
    ("deis 3 no-lof", "deis", {"order": 3, "lower_order_final": False}),
    ("ipndm", "ipndm", {}),
    ("ipndm lof", "ipndm", {"lower_order_final": True}),
    ("edm heun", "edm", {}),
    ("dpm++2m sde", "dpm_solver_pp_2m_sde", {}),
]
GRID_KINDS = ("log_snr", "karras", "quadratic", "uniform")


def mixtures() -> dict[str, GaussianMixture]:
    """8 Gaussians on a circle of radius 4/1.414, std 0.5/1.414; a 16-D 4-component mixture."""
    ang = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
    centers = 4.0 * torch.stack([torch.cos(ang), torch.sin(ang)], 1) / 1.414
    eight = GaussianMixture(
        torch.full((8,), 1 / 8), centers, torch.full((8, 2), (0.5 / 1.414) ** 2)
    )
    g = torch.Generator().manual_seed(0)
    means = 1.5 * torch.randn(4, 16, generator=g, dtype=torch.float64)
    var = 0.1 + 0.4 * torch.rand(4, 16, generator=g, dtype=torch.float64)
    return {"8gauss-2D": eight, "mix-16D": GaussianMixture([0.1, 0.2, 0.3, 0.4], means, var)}


def sliced_w2(x: torch.Tensor, y: torch.Tensor, n_proj: int = 256) -> float:
    """Sliced Wasserstein-2 between equal-size samples (sorted random 1-D projections)."""
    theta = torch.randn(
        x.shape[1], n_proj, generator=torch.Generator().manual_seed(0), dtype=x.dtype
    )
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, py = torch.sort(x @ theta, dim=0).values, torch.sort(y @ theta, dim=0).values
    return float(((px - py) ** 2).mean().sqrt())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nfe", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--grids", nargs="+", default=list(GRID_KINDS))
    p.add_argument("--only", nargs="+", default=None, help="labels of CONFIGS to run (default all)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"# threads={a.threads} n={a.n}; columns: SW2, CE gap (nats)")
    sde = VPSDE(eps=1e-3)
    for label, gm0 in mixtures().items():
        gm = gm0.with_sde(sde)
        x_T = sde.prior_sample((a.n, gm.dim), torch.Generator().manual_seed(1), dtype=torch.float64)
        exact = gm.sample(a.n, torch.Generator().manual_seed(2))
        floor = cross_entropy_gap(
            exact, gm0, n_reference=100_000, generator=torch.Generator().manual_seed(3)
        )
        print(
            f"\n## {label}: exact samples SW2 floor {sliced_w2(exact, gm.sample(a.n, torch.Generator().manual_seed(4))):.4f}, CE gap {floor.gap:+.3f} +- {floor.gap_se:.3f}"
        )
        for kind in a.grids:
            for name_l, name, opts in CONFIGS:
                if a.only is not None and name_l not in a.only:
                    continue
                row = []
                for nfe in a.nfe:
                    grid = grid_for_nfe(sde, name, nfe, kind, exact=False, **opts)
                    x, info = sample(
                        name, sde, gm, x_T, grid, generator=torch.Generator().manual_seed(5), **opts
                    )
                    gap = float(-gm0.log_prob(x).mean()) - floor.entropy
                    row.append(f"{info.nfe:2d}: {sliced_w2(x, exact):7.4f} {gap:+8.3f}")
                print(f"{kind:9s} {name_l:22s} | " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
