"""``ScoreModel``: a network plus an SDE, seen as score, eps and denoiser functions.

:class:`ScoreModel` wraps a network ``net(x, c)`` where ``c`` is the time conditioning, of
shape ``(batch,)``. How time enters is explicit: ``time_input="t"`` feeds the continuous time
t in [eps, T] unchanged, ``"log_snr"`` feeds lambda(t) = log(alpha_t^2 / sigma_t^2), ``"sigma"``
feeds sigma_t / alpha_t (EDM's noise level), or pass a callable ``(sde, t) -> c``. There is no
hidden ``t * 999`` label: a network with a sinusoidal embedding chooses its own frequency scale.

A class-conditional network ``net(x, c, y)`` (``net.num_classes`` set) makes every method take an
optional label ``y``: s(x, t | y), and s(x, t | ∅) for ``y = None`` (the null label), so a
ScoreModel is a conditional score ``score_fn(x, t, y)`` for
:mod:`scoresde.samplers.guidance` (classifier-free guidance, Ho & Salimans 2022).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .._utils import _cheap_to_check, append_dims, as_time, check_batch_time, names_list
from ..sde import LinearSDE
from .conversions import MODEL_OUTPUTS, _b, convert, eps_to_score, v_from

__all__ = ["TIME_INPUTS", "ScoreModel"]

TIME_INPUTS: tuple[str, ...] = ("t", "log_snr", "sigma")
TimeInput = str | Callable[[LinearSDE, Tensor], Tensor]


class ScoreModel(nn.Module):
    """A network plus an SDE, seen as score, eps and denoiser functions.

    Args:
        net: A module called as ``net(x, c)`` with ``x`` of shape ``(batch, *dims)`` and ``c``
            of shape ``(batch,)``; returns a tensor shaped like ``x``.
        sde: A linear SDE (VP, sub-VP or VE) giving alpha_t and sigma_t.
        predicts: What ``net`` outputs: 'eps' (default), 'x0', 'v', 'score', or 'edm': the
            preconditioned denoiser of Karras et al. (2022, Sec. 5 and Table 1), below.
        time_input: What ``c`` is: 't' (continuous time, default), 'log_snr', 'sigma'
            (sigma_t / alpha_t) or a callable ``(sde, t) -> c``.
        sigma_data: Standard deviation of the (scaled) data, used by ``predicts='edm'`` only.
        x0_clip: If set, at low SNR (sigma_t > alpha_t) the x0 estimate behind
            :meth:`score_fn`, :meth:`denoise` and ``forward`` is clamped to
            [-x0_clip, x0_clip] (Ho et al. 2020 clip to [-1, 1]). Use a bound of the data in
            model units. This is the study notes' rule "switch parameterization by t; x0 is
            more stable at low SNR", and it makes ``eps`` models safe under deterministic
            samplers: there x0 = (x_t - sigma_t eps) / alpha_t multiplies the network's error
            by sigma_t / alpha_t (150 at T for the default VP SDE) and the clamp bounds it,
            while it never moves an estimate of data inside the box away from the truth. At
            high SNR the eps view is kept (clamping there makes the score stiff). :meth:`eps_fn`,
            :meth:`predict` and :meth:`target` stay raw (training uses them).

    With ``predicts='edm'``, in the scaled coordinates x~ = x_t / alpha_t with noise level
    s = sigma_t / alpha_t (any linear SDE is x~ = x_0 + s eps), the network F sees the unit-variance
    input c_in x~ and the x0 estimate is

        x0_hat = c_skip x~ + c_out F(c_in x~, c),
        c_skip = sd^2 / (s^2 + sd^2),  c_out = s sd / sqrt(s^2 + sd^2),  c_in = 1 / sqrt(s^2 + sd^2),

    with sd = ``sigma_data``. Inputs and targets of F have unit variance at every noise level,
    and where the data are negligible (s >> sd) the score tends to the Gaussian -x / sigma_t^2
    whatever F does, which keeps probability-flow ODE trajectories from running away in the
    tails of the prior, where training sees few points.

    The wrapper never toggles ``train()``/``eval()``; that is the caller's business.

    Labels: every method takes ``y`` (``None``, an int or a ``(batch,)`` LongTensor), passed to a
    conditional network as its third argument and never to an unconditional one;
    :attr:`num_classes` says which it is, and :attr:`class_names` (set by the checkpoint loader)
    names the classes.
    """

    def __init__(
        self,
        net: nn.Module | Callable[[Tensor, Tensor], Tensor],
        sde: LinearSDE,
        predicts: str = "eps",
        time_input: TimeInput = "t",
        sigma_data: float = 1.0,
        x0_clip: float | None = None,
    ) -> None:
        super().__init__()
        if not callable(net):
            raise TypeError(f"ScoreModel: expected a callable net(x, c), received {net!r}")
        if not isinstance(sde, LinearSDE):
            raise TypeError(f"ScoreModel: expected a LinearSDE, received {type(sde).__name__}")
        if predicts not in MODEL_OUTPUTS:
            raise ValueError(
                f"unknown predicts {predicts!r}; expected one of {names_list(MODEL_OUTPUTS)}"
            )
        if not (isinstance(sigma_data, (int, float)) and 0 < sigma_data < float("inf")):
            raise ValueError(f"ScoreModel: expected sigma_data > 0, received {sigma_data!r}")
        self.sigma_data = float(sigma_data)
        if x0_clip is not None and not (
            isinstance(x0_clip, (int, float))
            and not isinstance(x0_clip, bool)
            and 0 < x0_clip < float("inf")
        ):
            raise ValueError(f"ScoreModel: expected x0_clip > 0 or None, received {x0_clip!r}")
        self.x0_clip = None if x0_clip is None else float(x0_clip)
        if not callable(time_input) and time_input not in TIME_INPUTS:
            raise ValueError(
                f"unknown time_input {time_input!r}; expected one of {names_list(TIME_INPUTS)} "
                "or a callable (sde, t) -> c"
            )
        self.net, self.sde, self.predicts, self.time_input = net, sde, predicts, time_input
        #: Names of the classes of a conditional model (a checkpoint's label set), if known.
        self.class_names: list[str] | None = None

    @property
    def num_classes(self) -> int | None:
        """The number of classes K of a conditional network, ``None`` for an unconditional one."""
        k = getattr(self.net, "num_classes", None)
        return k if isinstance(k, int) else None

    def conditioning(
        self, t: Tensor, alpha: Tensor | None = None, sigma: Tensor | None = None
    ) -> Tensor:
        """The network's time input c for times ``t`` of shape ``(batch,)``.

        ``alpha``/``sigma`` (the marginal at ``t``) may be passed in when already known.
        """
        if callable(self.time_input):
            return self.time_input(self.sde, t)
        if self.time_input == "t":
            return t
        if self.time_input == "log_snr":
            return self.sde.log_snr(t)
        if alpha is None or sigma is None:
            alpha, sigma = self.sde.marginal(t)
        return sigma / alpha

    def _evaluate(
        self, x: Tensor, t: float | Tensor, y: Any = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(raw net output, x0 if 'edm' else None, alpha_t, sigma_t): one marginal per call."""
        tt = as_time(t, like=x)
        check_batch_time(tt, x.shape[0])
        tt = tt.expand(x.shape[0]) if tt.ndim == 0 or tt.shape[0] == 1 else tt
        tt = tt.reshape(x.shape[0])
        alpha, sigma = self.sde.marginal(tt)
        if _cheap_to_check(sigma) and not bool((sigma > 0).all()):
            bad = float(tt[sigma <= 0].min())
            raise ValueError(
                f"ScoreModel: expected times with sigma_t > 0 (t >= sde.eps = {self.sde.eps:g}), "
                f"received t = {bad:g} where sigma_t = 0: the score is undefined there"
            )
        x_in = x
        if self.predicts == "edm":
            c_skip, c_out, c_in = self._edm(alpha, sigma)
            x_in = append_dims(c_in / alpha, x.ndim) * x  # c_in x~ with x~ = x / alpha_t
        c = self.conditioning(tt, alpha, sigma)
        out = self.net(x_in, c) if y is None else self.net(x_in, c, y)  # type: ignore[call-arg]  # a conditional net(x, c, y)
        if out.shape != x.shape:
            raise ValueError(
                f"ScoreModel: net output must be shaped like x {tuple(x.shape)}, received "
                f"{tuple(out.shape)}"
            )
        if self.predicts == "edm":
            x0 = append_dims(c_skip / alpha, x.ndim) * x + append_dims(c_out, x.ndim) * out
            return out, x0, alpha, sigma
        return out, out, alpha, sigma

    def net_output(self, x: Tensor, t: float | Tensor, y: Any = None) -> Tensor:
        """The raw network output at (x, t); ``t`` is broadcast to shape ``(batch,)``."""
        return self._evaluate(x, t, y)[0]

    def predict(self, x: Tensor, t: float | Tensor, kind: str, y: Any = None) -> Tensor:
        """The prediction of kind ``kind`` ('eps', 'x0', 'v', 'score') at (x, t) given ``y``."""
        _, pred, alpha, sigma = self._evaluate(x, t, y)
        src = "x0" if self.predicts == "edm" else self.predicts
        return convert(pred, x, alpha, sigma, src, kind)

    def _edm(self, alpha: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        s = sigma / alpha
        denom = s**2 + self.sigma_data**2
        c_skip = self.sigma_data**2 / denom
        c_out = s * self.sigma_data / torch.sqrt(denom)
        return c_skip, c_out, 1 / torch.sqrt(denom)

    def edm_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(c_skip, c_out, c_in, alpha_t) of the 'edm' preconditioning at times ``t``."""
        alpha, sigma = self.sde.marginal(t)
        return (*self._edm(alpha, sigma), alpha)

    def _clipped_x0(
        self, x: Tensor, t: float | Tensor, y: Any = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(x0_hat, clamped where sigma_t > alpha_t; alpha_t, sigma_t) for the sampling side."""
        _, pred, alpha, sigma = self._evaluate(x, t, y)
        src = "x0" if self.predicts == "edm" else self.predicts
        x0 = convert(pred, x, alpha, sigma, src, "x0")
        low = append_dims(
            sigma > alpha, x.ndim
        )  # low SNR (lambda < 0): where x0 = (x - sigma eps) / alpha fails
        clip = self.x0_clip
        assert clip is not None
        x0c = x0.clamp(-clip, clip)
        return torch.where(low, x0c, x0), alpha, sigma

    def score_fn(self, x: Tensor, t: float | Tensor, y: Any = None) -> Tensor:
        """grad_x log p_t(x [| y]) as estimated by the network (via the clamped x0 if x0_clip)."""
        if self.x0_clip is None:
            return self.predict(x, t, "score", y)
        x0, alpha, sigma = self._clipped_x0(x, t, y)
        return -(x - _b(alpha, x) * x0) / _b(sigma, x) ** 2  # Tweedie, solved for the score

    def eps_fn(self, x: Tensor, t: float | Tensor, y: Any = None) -> Tensor:
        """The noise estimate eps_theta(x, t [| y]) = -sigma_t score."""
        return self.predict(x, t, "eps", y)

    def denoise(self, x: Tensor, t: float | Tensor, y: Any = None) -> Tensor:
        """The x0 estimate E[x_0 | x_t = x (, y)] (Tweedie's formula), clamped if x0_clip."""
        if self.x0_clip is None:
            return self.predict(x, t, "x0", y)
        return self._clipped_x0(x, t, y)[0]

    def forward(self, x: Tensor, t: float | Tensor, y: Any = None) -> Tensor:
        """Same as :meth:`score_fn`, so a ScoreModel is itself a (conditional) score function."""
        return self.score_fn(x, t, y)

    def target(self, x0: Tensor, noise: Tensor, t: float | Tensor) -> Tensor:
        """The regression target for ``predicts`` at x_t = alpha_t x0 + sigma_t noise."""
        tt = as_time(t, like=x0)
        alpha, sigma = self.sde.marginal(tt)
        if self.predicts == "eps":
            return noise
        if self.predicts == "x0":
            return x0
        if self.predicts == "v":
            return v_from(noise, x0, alpha, sigma)
        if self.predicts == "edm":  # F* = (x0 - c_skip x~) / c_out with x~ = x0 + (sigma/alpha) eps
            c_skip, c_out, _ = self._edm(alpha, sigma)
            x_tilde = x0 + _b(sigma / alpha, x0) * noise
            return (x0 - _b(c_skip, x0) * x_tilde) / _b(c_out, x0)
        return eps_to_score(noise, sigma)
