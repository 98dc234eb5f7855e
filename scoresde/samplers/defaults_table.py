"""The few-step defaults measured on the problem family: data, written by a benchmark.

Written whole by ``benchmarks/few_step_defaults.py --write-table`` (never by hand); the meaning of
each table and how it is used are in :mod:`scoresde.samplers.defaults`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RECOMMENDED", "RECOMMENDED_LEARNED", "TABLE"]

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
            "<=10": {"grid": "log_snr", "variance": "beta_tilde"},
            "11-25": {"grid": "quadratic", "variance": "beta_tilde"},
            ">25": {"grid": "quadratic", "variance": "beta"},
        }
    },
    "smld": {
        "ve": {
            "<=10": {"grid": "quadratic"},
            "11-25": {"grid": "uniform"},
            ">25": {"grid": "uniform"},
        }
    },
    "pc": {
        "vp": {
            "<=10": {"grid": "log_snr", "snr": 0.3},
            "11-25": {"grid": "log_snr", "snr": 0.3},
            ">25": {"grid": "quadratic", "snr": 0.3},
        },
        "subvp": {
            "<=10": {"grid": "uniform", "snr": 0.3},
            "11-25": {"grid": "quadratic", "snr": 0.3},
            ">25": {"grid": "quadratic", "snr": 0.3},
        },
        "ve": {
            "<=10": {"grid": "uniform", "snr": 0.3},
            "11-25": {"grid": "uniform", "snr": 0.3},
            ">25": {"grid": "uniform", "snr": 0.3},
        },
    },
    "annealed_langevin": {
        "ve": {
            "<=10": {"grid": "uniform", "snr": None},
            "11-25": {"grid": "uniform", "snr": None},
            ">25": {"grid": "uniform", "snr": None},
        }
    },
    "pf_euler": {
        "vp": {
            "<=10": {"grid": "log_snr", "coords": "noise"},
            "11-25": {"grid": "uniform", "coords": "t"},
            ">25": {"grid": "quadratic", "coords": "t"},
        },
        "subvp": {
            "<=10": {"grid": "quadratic", "coords": "noise"},
            "11-25": {"grid": "quadratic", "coords": "noise"},
            ">25": {"grid": "quadratic", "coords": "noise"},
        },
        "ve": {
            "<=10": {"grid": "quadratic", "coords": "noise"},
            "11-25": {"grid": "quadratic", "coords": "noise"},
            ">25": {"grid": "quadratic", "coords": "noise"},
        },
    },
    "pf_heun": {
        "vp": {
            "<=10": {"grid": "log_snr", "coords": "t"},
            "11-25": {"grid": "quadratic", "coords": "t"},
            ">25": {"grid": "quadratic", "coords": "t"},
        },
        "subvp": {
            "<=10": {"grid": "karras", "coords": "t"},
            "11-25": {"grid": "uniform", "coords": "t"},
            ">25": {"grid": "quadratic", "coords": "t"},
        },
        "ve": {
            "<=10": {"grid": "karras", "coords": "noise"},
            "11-25": {"grid": "uniform", "coords": "noise"},
            ">25": {"grid": "uniform", "coords": "noise"},
        },
    },
    "pf_rk4": {
        "vp": {
            "<=10": {"grid": "log_snr", "coords": "t"},
            "11-25": {"grid": "karras", "coords": "t"},
            ">25": {"grid": "quadratic", "coords": "t"},
        },
        "subvp": {
            "<=10": {"grid": "quadratic", "coords": "t"},
            "11-25": {"grid": "quadratic", "coords": "t"},
            ">25": {"grid": "quadratic", "coords": "t"},
        },
        "ve": {
            "<=10": {"grid": "karras", "coords": "noise"},
            "11-25": {"grid": "uniform", "coords": "noise"},
            ">25": {"grid": "uniform", "coords": "noise"},
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
            ">25": {"grid": "quadratic", "lower_order_final": False},
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
            ">25": {"grid": "log_snr", "lower_order_final": True},
        },
        "subvp": {
            "<=10": {"grid": "uniform", "lower_order_final": True},
            "11-25": {"grid": "karras", "lower_order_final": False},
            ">25": {"grid": "karras", "lower_order_final": True},
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
            "<=10": {"grid": "quadratic", "lower_order_final": True},
            "11-25": {"grid": "log_snr", "lower_order_final": True},
            ">25": {"grid": "karras", "lower_order_final": True},
        },
        "subvp": {
            "<=10": {"grid": "uniform", "lower_order_final": True},
            "11-25": {"grid": "log_snr", "lower_order_final": True},
            ">25": {"grid": "quadratic", "lower_order_final": True},
        },
        "ve": {
            "<=10": {"grid": "uniform", "lower_order_final": True},
            "11-25": {"grid": "log_snr", "lower_order_final": True},
            ">25": {"grid": "karras", "lower_order_final": True},
        },
    },
    "dpm_solver_pp_2m_sde": {
        "vp": {
            "<=10": {"grid": "quadratic", "lower_order_final": True},
            "11-25": {"grid": "log_snr", "lower_order_final": True},
            ">25": {"grid": "log_snr", "lower_order_final": True},
        },
        "subvp": {
            "<=10": {"grid": "uniform", "lower_order_final": True},
            "11-25": {"grid": "log_snr", "lower_order_final": True},
            ">25": {"grid": "log_snr", "lower_order_final": True},
        },
        "ve": {
            "<=10": {"grid": "uniform", "lower_order_final": True},
            "11-25": {"grid": "quadratic", "lower_order_final": True},
            ">25": {"grid": "quadratic", "lower_order_final": True},
        },
    },
    "unipc": {
        "vp": {
            "<=10": {"grid": "karras", "order": 2, "variant": "bh2", "lower_order_final": True},
            "11-25": {"grid": "log_snr", "order": 3, "variant": "bh1", "lower_order_final": True},
            ">25": {"grid": "log_snr", "order": 3, "variant": "bh2", "lower_order_final": True},
        },
        "subvp": {
            "<=10": {"grid": "uniform", "order": 3, "variant": "bh2", "lower_order_final": True},
            "11-25": {"grid": "log_snr", "order": 2, "variant": "bh2", "lower_order_final": True},
            ">25": {"grid": "quadratic", "order": 3, "variant": "bh2", "lower_order_final": True},
        },
        "ve": {
            "<=10": {"grid": "uniform", "order": 2, "variant": "bh2", "lower_order_final": True},
            "11-25": {"grid": "quadratic", "order": 1, "variant": "bh1", "lower_order_final": True},
            ">25": {"grid": "quadratic", "order": 2, "variant": "bh2", "lower_order_final": True},
        },
    },
    "deis": {
        "vp": {
            "<=10": {"grid": "log_snr", "order": 4, "lower_order_final": True},
            "11-25": {"grid": "log_snr", "order": 4, "lower_order_final": True},
            ">25": {"grid": "log_snr", "order": 3, "lower_order_final": True},
        },
        "subvp": {
            "<=10": {"grid": "quadratic", "order": 4, "lower_order_final": False},
            "11-25": {"grid": "quadratic", "order": 4, "lower_order_final": True},
            ">25": {"grid": "quadratic", "order": 4, "lower_order_final": True},
        },
        "ve": {
            "<=10": {"grid": "quadratic", "order": 4, "lower_order_final": False},
            "11-25": {"grid": "quadratic", "order": 3, "lower_order_final": True},
            ">25": {"grid": "karras", "order": 4, "lower_order_final": True},
        },
    },
    "ipndm": {
        "vp": {
            "<=10": {"grid": "log_snr", "order": 4, "lower_order_final": False},
            "11-25": {"grid": "quadratic", "order": 4, "lower_order_final": True},
            ">25": {"grid": "quadratic", "order": 4, "lower_order_final": True},
        },
        "subvp": {
            "<=10": {"grid": "quadratic", "order": 4, "lower_order_final": False},
            "11-25": {"grid": "quadratic", "order": 4, "lower_order_final": True},
            ">25": {"grid": "quadratic", "order": 4, "lower_order_final": True},
        },
        "ve": {
            "<=10": {"grid": "quadratic", "order": 4, "lower_order_final": True},
            "11-25": {"grid": "uniform", "order": 4, "lower_order_final": True},
            ">25": {"grid": "uniform", "order": 4, "lower_order_final": True},
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
}
RECOMMENDED: dict[str, dict[str, str]] = {
    "vp": {"<=10": "dpm_solver_pp_3m", "11-25": "ipndm", ">25": "dpm_solver_2"},
    "subvp": {"<=10": "deis", "11-25": "deis", ">25": "unipc"},
    "ve": {"<=10": "dpm_solver_pp_2m", "11-25": "deis", ">25": "dpm_solver_2"},
}
RECOMMENDED_LEARNED: dict[str, dict[str, str]] = {
    "vp": {
        "<=10": "dpm_solver_pp_2m_sde",
        "11-25": "dpm_solver_pp_2m_sde",
        ">25": "dpm_solver_pp_2m_sde",
    },
    "subvp": {
        "<=10": "dpm_solver_pp_2m_sde",
        "11-25": "euler_maruyama",
        ">25": "reverse_diffusion",
    },
    "ve": {"<=10": "smld", "11-25": "euler_maruyama", ">25": "dpm_solver_pp_2m_sde"},
}
