"""DDPM's L_simple (Ho et al. 2020, Eq. 14) over integer steps i = 0..N-1 at t_i = (i + 1) T / N."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..parameterization import ScoreModel
from ..sde import DDPMSchedule
from ..sde.ddpm import index_to_time, time_to_index
from ..sde.pf_ode import perturb
from .base import REDUCTIONS, EpsFn, Loss, choice, predict_eps, reduce_dims

__all__ = ["DDPMLoss"]


class DDPMLoss(Loss):
    """DDPM's L_simple = E_{i, x_0, eps} || eps_hat(x_i, t_i) - eps ||^2 (Ho et al. 2020, Eq. 14).

    x_i = sqrt(alpha_bar_i) x_0 + sqrt(1 - alpha_bar_i) eps with i uniform on 0..N-1 and the
    model queried at t_i = (i + 1) T / N. ``draw`` returns t_i; ``terms`` recovers i from it.

    Args:
        schedule: The discrete chain (``DDPMSchedule.from_betas`` or ``.from_sde``).
        reduction: ``"mean"`` or ``"sum"`` over non-batch dimensions.
        T: Final time of the continuous clock.
    """

    def __init__(self, schedule: DDPMSchedule, reduction: str = "mean", T: float = 1.0) -> None:
        if not isinstance(schedule, DDPMSchedule):
            raise TypeError(f"DDPMLoss needs a DDPMSchedule, received {type(schedule).__name__}")
        self.schedule, self.T = schedule, float(T)
        self.reduction = choice(reduction, REDUCTIONS, "reduction")

    def sample_t(
        self, n: int, generator: torch.Generator | None, device: Any, dtype: Any
    ) -> Tensor:
        """Draw ``n`` times t of the objective (shape ``(n,)``)."""
        i = torch.randint(0, self.schedule.N, (n,), generator=generator, device=device)
        return index_to_time(i.cpu(), self.schedule.N, self.T).to(device=device, dtype=dtype)

    def terms(
        self, model: ScoreModel | EpsFn, x0: Tensor, t: Tensor, noise: Tensor, y: Any = None
    ) -> Tensor:
        """Per-example losses of shape ``(B,)`` (their mean is the objective); ``y`` the labels."""
        i = time_to_index(t.detach().cpu(), self.schedule.N, self.T)
        ab = self.schedule.alpha_bars[i].to(device=x0.device, dtype=x0.dtype)
        x_i = perturb(x0, ab.sqrt(), (1 - ab).sqrt(), noise)
        return reduce_dims((predict_eps(model, x_i, t, y) - noise) ** 2, self.reduction)
