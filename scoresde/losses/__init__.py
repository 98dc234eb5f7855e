"""Training objectives, each behind the :class:`Loss` protocol that ``train`` types against.

* :mod:`~scoresde.losses.dsm`: continuous-time denoising score matching (weightings sigma^2,
  likelihood g^2, uniform, min-SNR; uniform or importance time sampling) and SMLD;
* :mod:`~scoresde.losses.ddpm`: DDPM's L_simple over the discrete chain;
* :mod:`~scoresde.losses.hybrid`: improved DDPM's L_simple + lambda L_vlb with a learned
  variance (Nichol & Dhariwal 2021);
* :mod:`~scoresde.losses.vdm`: the VDM bound with a learned log-SNR schedule (Kingma et al. 2021).

:data:`LOSSES` and :func:`get_loss` build the ones a run config names.
"""

from __future__ import annotations

from typing import Any

from .._utils import names_list
from ..sde import DDPMSchedule, LinearSDE
from .base import REDUCTIONS, Loss
from .ddpm import DDPMLoss
from .dsm import T_SAMPLINGS, WEIGHTINGS, DSMLoss, SMLDLoss, dsm_loss
from .hybrid import HybridLoss, learned_log_variance
from .vdm import VDMLoss, VDMTerms, vdm_vlb

__all__ = [
    "LOSSES",
    "REDUCTIONS",
    "T_SAMPLINGS",
    "WEIGHTINGS",
    "DDPMLoss",
    "DSMLoss",
    "HybridLoss",
    "Loss",
    "SMLDLoss",
    "VDMLoss",
    "VDMTerms",
    "dsm_loss",
    "get_loss",
    "learned_log_variance",
    "vdm_vlb",
]

#: The losses a run config names, by name.
LOSSES: dict[str, type[Loss]] = {"dsm": DSMLoss, "ddpm": DDPMLoss, "smld": SMLDLoss}


def get_loss(name: str, sde: LinearSDE, **kwargs: Any) -> Loss:
    """Build a registered loss for ``sde`` (``"ddpm"`` uses ``DDPMSchedule.from_sde(sde, N)``).

    Args:
        name: ``"dsm"``, ``"ddpm"`` or ``"smld"``.
        sde: The forward SDE.
        **kwargs: Constructor options (``num_steps`` for ``"ddpm"``).

    Raises:
        ValueError: For an unknown name.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {names_list(LOSSES)}")
    if name == "ddpm":
        n = int(kwargs.pop("num_steps", 1000))
        return DDPMLoss(DDPMSchedule.from_sde(sde, n), T=sde.T, **kwargs)
    return LOSSES[name](sde, **kwargs)  # type: ignore[call-arg]  # dsm, smld: cls(sde, **options)
