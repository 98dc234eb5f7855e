"""Few-step defaults per sampler, SDE kind and NFE band, and the recommended sampler per budget.

What is derived, not fitted (DESIGN contract 12; docs/howto/sample.md, "The end of sampling"):

* every run given an NFE ends at the SDE's ``eps`` and then takes one Tweedie step
  x0 = (x + sigma_t^2 s(x, t)) / alpha_t, counted in the NFE (``denoise=False`` turns it off);

What is chosen on training problems of the family :func:`~scoresde.data.family.random_mixture`
by ``benchmarks/few_step_defaults.py`` and reported on held-out ones (the block between the
``BEGIN``/``END`` markers is written by that script, never by hand):

* :data:`TABLE`: ``TABLE[sampler][sde_kind][band] = {"grid": kind, **options}``: the grid kind
  and the sampler's own few-step switches (``lower_order_final``, a corrector's ``snr``);
* :data:`RECOMMENDED`: ``RECOMMENDED[sde_kind][band] = sampler``: the sampler ``sample("auto",
  ...)`` runs.

A sampler, SDE kind or band missing from the table falls back to the sampler's
``SamplerSpec.default_grid`` and ``default_options``.
"""

from __future__ import annotations

from typing import Any

from ..sde import VESDE, LinearSDE, SubVPSDE

__all__ = ["BANDS", "RECOMMENDED", "TABLE", "band_of", "recommended", "sde_kind", "table_entry"]

#: NFE bands: name -> (lowest, highest) NFE.
BANDS: dict[str, tuple[int, float]] = {
    "<=10": (1, 10),
    "11-25": (11, 25),
    ">25": (26, float("inf")),
}


def band_of(nfe: int) -> str:
    """The NFE band of ``nfe`` (a key of :data:`BANDS`)."""
    return next(k for k, (lo, hi) in BANDS.items() if lo <= nfe <= hi)


def sde_kind(sde: LinearSDE) -> str:
    """'ve', 'subvp' or 'vp' (every other linear SDE: VP with any schedule)."""
    if isinstance(sde, VESDE):
        return "ve"
    return "subvp" if isinstance(sde, SubVPSDE) else "vp"


def table_entry(name: str, sde: LinearSDE, nfe: int) -> dict[str, Any] | None:
    """The chosen ``{"grid": kind, **options}`` of sampler ``name``, or None if not chosen."""
    return TABLE.get(name, {}).get(sde_kind(sde), {}).get(band_of(nfe))


def recommended(sde: LinearSDE, nfe: int) -> str:
    """The sampler that was best on the family's training problems for this SDE kind and band."""
    kind, band = sde_kind(sde), band_of(nfe)
    if kind not in RECOMMENDED or band not in RECOMMENDED[kind]:
        raise ValueError(f"auto: no recommended sampler for SDE kind {kind!r} and band {band!r}")
    return RECOMMENDED[kind][band]


# BEGIN TABLE (written by benchmarks/few_step_defaults.py --write-table)
TABLE: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "euler_maruyama": {
        "vp": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "subvp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        },
    },
    "reverse_diffusion": {
        "vp": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "subvp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        },
    },
    "ddpm": {
        "vp": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "log_snr"},
        }
    },
    "smld": {
        "ve": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "quadratic"},
        }
    },
    "pc": {
        "vp": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "quadratic"},
        },
        "subvp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        },
    },
    "annealed_langevin": {
        "ve": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        }
    },
    "pf_euler": {
        "vp": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "quadratic"},
        },
        "subvp": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "log_snr"},
        },
        "ve": {"<=10": {"grid": "karras"}, "11-25": {"grid": "karras"}, ">25": {"grid": "uniform"}},
    },
    "pf_heun": {
        "vp": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "subvp": {
            "<=10": {"grid": "karras"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        },
    },
    "pf_rk4": {
        "vp": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "karras"},
            ">25": {"grid": "quadratic"},
        },
        "subvp": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "karras"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        },
    },
    "ddim": {
        "vp": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "log_snr"},
        },
        "subvp": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
    },
    "dpm_solver_2": {
        "vp": {
            "<=10": {"grid": "quadratic", "lower_order_final": True},
            "11-25": {"grid": "quadratic", "lower_order_final": False},
            ">25": {"grid": "log_snr", "lower_order_final": False},
        },
        "subvp": {
            "<=10": {"grid": "quadratic", "lower_order_final": True},
            "11-25": {"grid": "quadratic", "lower_order_final": False},
            ">25": {"grid": "quadratic", "lower_order_final": False},
        },
        "ve": {
            "<=10": {"grid": "uniform", "lower_order_final": True},
            "11-25": {"grid": "uniform", "lower_order_final": False},
            ">25": {"grid": "uniform", "lower_order_final": False},
        },
    },
    "dpm_solver_3": {
        "vp": {
            "<=10": {"grid": "log_snr", "lower_order_final": True},
            "11-25": {"grid": "log_snr", "lower_order_final": False},
            ">25": {"grid": "log_snr", "lower_order_final": False},
        },
        "subvp": {
            "<=10": {"grid": "uniform", "lower_order_final": True},
            "11-25": {"grid": "karras", "lower_order_final": False},
            ">25": {"grid": "karras", "lower_order_final": False},
        },
        "ve": {
            "<=10": {"grid": "uniform", "lower_order_final": True},
            "11-25": {"grid": "karras", "lower_order_final": False},
            ">25": {"grid": "karras", "lower_order_final": False},
        },
    },
    "dpm_solver_fast": {
        "vp": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "log_snr"},
        },
        "subvp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "karras"},
            ">25": {"grid": "karras"},
        },
        "ve": {"<=10": {"grid": "uniform"}, "11-25": {"grid": "karras"}, ">25": {"grid": "karras"}},
    },
    "dpm_solver_pp_2m": {
        "vp": {
            "<=10": {"grid": "karras", "lower_order_final": True},
            "11-25": {"grid": "log_snr", "lower_order_final": True},
            ">25": {"grid": "quadratic", "lower_order_final": True},
        },
        "subvp": {
            "<=10": {"grid": "uniform", "lower_order_final": True},
            "11-25": {"grid": "log_snr", "lower_order_final": True},
            ">25": {"grid": "quadratic", "lower_order_final": True},
        },
        "ve": {
            "<=10": {"grid": "uniform", "lower_order_final": True},
            "11-25": {"grid": "quadratic", "lower_order_final": True},
            ">25": {"grid": "quadratic", "lower_order_final": False},
        },
    },
    "dpm_solver_pp_3m": {
        "vp": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "karras"},
        },
        "subvp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "karras"},
        },
    },
    "dpm_solver_pp_2m_sde": {
        "vp": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "log_snr"},
        },
        "subvp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "log_snr"},
        },
        "ve": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
    },
    "unipc": {
        "vp": {
            "<=10": {"grid": "karras"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "log_snr"},
        },
        "subvp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
    },
    "deis": {
        "vp": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "log_snr"},
        },
        "subvp": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
    },
    "ipndm": {
        "vp": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "log_snr"},
        },
        "subvp": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "quadratic"},
        },
    },
    "edm": {
        "vp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "subvp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        },
        "ve": {
            "<=10": {"grid": "karras"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        },
    },
    "dpm_solver_1": {
        "vp": {
            "<=10": {"grid": "log_snr"},
            "11-25": {"grid": "log_snr"},
            ">25": {"grid": "log_snr"},
        },
        "subvp": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
        "ve": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "quadratic"},
            ">25": {"grid": "quadratic"},
        },
    },
    "torchsde": {
        "vp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        },
        "subvp": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        },
        "ve": {
            "<=10": {"grid": "uniform"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        },
    },
}
RECOMMENDED: dict[str, dict[str, str]] = {
    "vp": {"<=10": "dpm_solver_pp_2m", "11-25": "dpm_solver_pp_3m", ">25": "ipndm"},
    "subvp": {"<=10": "deis", "11-25": "deis", ">25": "pf_rk4"},
    "ve": {"<=10": "unipc", "11-25": "deis", ">25": "ipndm"},
}
# END TABLE
