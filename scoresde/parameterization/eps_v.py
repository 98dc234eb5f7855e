"""A network with improved DDPM's two outputs (eps_hat, v), seen as score and v functions.

Nichol & Dhariwal (2021, Sec. 3.1): the network predicts the noise eps_hat and the weight v of
the learned reverse variance log Sigma = v log beta + (1 - v) log beta_tilde; the objective is
:class:`~scoresde.losses.HybridLoss`, the sampler ``sample_ddpm(..., variance="learned",
v_fn=model.v_fn)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._utils import append_dims, as_time
from ..sde import VPSDE

__all__ = ["EpsVModel"]


class EpsVModel(nn.Module):
    """A network with improved DDPM's two outputs, eps_hat and v, seen as score and v functions.

    Args:
        net: ``net(x, t)`` returning ``(eps_hat, v)`` (both shaped like ``x``) or one tensor with
            twice the channels of ``x`` along dim 1, split into eps_hat and v (as improved
            DDPM's "learned sigma" output). ``t`` is the continuous time, shape ``(batch,)``.
        sde: The VP SDE of the model.

    ``model(x, t)`` is the ``eps_v_fn`` of :class:`HybridLoss`; :meth:`score_fn` and :meth:`v_fn`
    reuse the last evaluation when called at the same ``x`` (same object, unchanged) and ``t``.
    """

    def __init__(self, net: nn.Module, sde: VPSDE) -> None:
        super().__init__()
        if not callable(net):
            raise TypeError(f"EpsVModel: expected a callable net(x, t), received {net!r}")
        if not isinstance(sde, VPSDE):
            raise TypeError(f"EpsVModel: expected a VPSDE, received {type(sde).__name__}")
        self.net, self.sde = net, sde
        self._last: tuple[Tensor, int, Tensor, tuple[Tensor, Tensor]] | None = None

    def forward(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(eps_hat, v)``, both shaped like ``x``, at times ``t`` of shape ``(batch,)``."""
        tt = as_time(t, like=x).expand(x.shape[0])
        out = self.net(x, tt)
        if isinstance(out, Tensor) and out.ndim == x.ndim and out.shape[1] == 2 * x.shape[1]:
            out = tuple(out.chunk(2, dim=1))
        if not (isinstance(out, tuple) and len(out) == 2 and all(o.shape == x.shape for o in out)):
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"EpsVModel: expected net to return (eps, v) shaped like x {tuple(x.shape)} or one "
                f"tensor with twice its channels, received {got}"
            )
        self._last = (x, x._version, tt.detach().clone(), out)
        return out

    def _eval(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        tt = as_time(t, like=x).expand(x.shape[0])
        last = self._last
        if last is not None and last[0] is x and last[1] == x._version and torch.equal(last[2], tt):
            return last[3]
        return self(x, tt)

    def score_fn(self, x: Tensor, t: Tensor) -> Tensor:
        """The score s = -eps_hat / sigma_t shaped like ``x``."""
        eps, _ = self._eval(x, t)
        _, sigma = self.sde.marginal(as_time(t, like=x).expand(x.shape[0]))
        return -eps / append_dims(sigma, x.ndim)

    def v_fn(self, x: Tensor, t: Tensor) -> Tensor:
        """The interpolation weight v shaped like ``x`` (log Sigma = v log beta + ...)."""
        return self._eval(x, t)[1]
