"""What a network predicts, and how to turn it into a score function.

Under a linear SDE, x_t = alpha_t x_0 + sigma_t eps (Song et al. 2021, Eq. 29), and four targets
carry the same information (given x_t, alpha_t, sigma_t):

* eps    the noise;                        score = -eps / sigma_t
* x0     the denoised data E[x_0 | x_t];   Tweedie: x0 = (x_t + sigma_t^2 score) / alpha_t
* v      v = alpha_t eps - sigma_t x0 (Salimans & Ho 2022), valid for any (alpha_t, sigma_t):
         x0 = (alpha_t x_t - sigma_t v) / (alpha_t^2 + sigma_t^2),
         eps = (sigma_t x_t + alpha_t v) / (alpha_t^2 + sigma_t^2)
* score  grad_x log p_t(x_t)

:class:`ScoreModel` wraps a network ``net(x, c)`` where ``c`` is the time conditioning, of
shape ``(batch,)``. How time enters is explicit: ``time_input="t"`` feeds the continuous time
t in [eps, T] unchanged, ``"log_snr"`` feeds lambda(t) = log(alpha_t^2 / sigma_t^2), ``"sigma"``
feeds sigma_t / alpha_t (EDM's noise level), or pass a callable ``(sde, t) -> c``. There is no
hidden ``t * 999`` label: a network with a sinusoidal embedding chooses its own frequency scale.

:func:`from_discrete_eps_model` turns a DDPM-style eps-model over integer steps 0..N-1 into a
continuous VP score function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from ._utils import append_dims, as_time, check_batch_time, names_list
from .sde import VPSDE, LinearSDE, PiecewiseLinearIntegral
from .sde.ddpm import DDPMSchedule

__all__ = [
    "MODEL_OUTPUTS",
    "PREDICTS",
    "TIME_INPUTS",
    "DiscreteEpsScore",
    "ScoreModel",
    "convert",
    "eps_to_score",
    "eps_to_x0",
    "from_denoiser",
    "from_discrete_eps_model",
    "score_to_eps",
    "to_eps",
    "v_from",
    "x0_to_eps",
]

Predicts = Literal["eps", "x0", "v", "score"]
PREDICTS: tuple[str, ...] = ("eps", "x0", "v", "score")
#: What a ScoreModel's network may output: any of PREDICTS, or 'edm' (preconditioned x0).
MODEL_OUTPUTS: tuple[str, ...] = (*PREDICTS, "edm")
TIME_INPUTS: tuple[str, ...] = ("t", "log_snr", "sigma")


def _check_predicts(name: str, what: str = "predicts") -> None:
    if name not in PREDICTS:
        raise ValueError(f"unknown {what} {name!r}; expected one of {names_list(PREDICTS)}")


def _b(v: Tensor | float, x: Tensor) -> Tensor:
    v = as_time(v, like=x)
    return append_dims(v, x.ndim)


def eps_to_x0(eps: Tensor, x: Tensor, alpha: Tensor | float, sigma: Tensor | float) -> Tensor:
    """x0 = (x - sigma eps) / alpha."""
    return (x - _b(sigma, x) * eps) / _b(alpha, x)


def x0_to_eps(x0: Tensor, x: Tensor, alpha: Tensor | float, sigma: Tensor | float) -> Tensor:
    """eps = (x - alpha x0) / sigma."""
    return (x - _b(alpha, x) * x0) / _b(sigma, x)


def eps_to_score(eps: Tensor, sigma: Tensor | float) -> Tensor:
    """score = -eps / sigma."""
    return -eps / _b(sigma, eps)


def score_to_eps(score: Tensor, sigma: Tensor | float) -> Tensor:
    """eps = -sigma score."""
    return -_b(sigma, score) * score


def to_eps(out: Tensor, x: Tensor, alpha: Tensor, sigma: Tensor, src: str) -> Tensor:
    """Convert a prediction of kind ``src`` into eps (exactly)."""
    if src == "eps":
        return out
    if src == "x0":
        return x0_to_eps(out, x, alpha, sigma)
    if src == "score":
        return score_to_eps(out, sigma)
    if src == "v":
        a, s = _b(alpha, x), _b(sigma, x)
        return (s * x + a * out) / (a**2 + s**2)
    _check_predicts(src, "source")
    raise AssertionError("unreachable")


def v_from(eps: Tensor, x0: Tensor, alpha: Tensor | float, sigma: Tensor | float) -> Tensor:
    """v = alpha eps - sigma x0 (Salimans & Ho 2022)."""
    return _b(alpha, eps) * eps - _b(sigma, eps) * x0


def convert(
    out: Tensor, x: Tensor, alpha: Tensor | float, sigma: Tensor | float, src: str, dst: str
) -> Tensor:
    """Convert a prediction between 'eps', 'x0', 'v' and 'score', exactly, given x_t.

    Args:
        out: The prediction, shaped like ``x``.
        x: The noisy state x_t of shape ``(batch, *dims)``.
        alpha: alpha_t, a scalar or shape ``(batch,)``.
        sigma: sigma_t, a scalar or shape ``(batch,)``.
        src: What ``out`` is.
        dst: What to return.
    """
    _check_predicts(src, "source")
    _check_predicts(dst, "target")
    if out.shape != x.shape:
        raise ValueError(
            f"convert: expected a prediction shaped like x {tuple(x.shape)}, received "
            f"{tuple(out.shape)}"
        )
    alpha_t, sigma_t = as_time(alpha, like=x), as_time(sigma, like=x)
    if src == dst:
        return out
    eps = to_eps(out, x, alpha_t, sigma_t, src)
    if dst == "eps":
        return eps
    if dst == "score":
        return eps_to_score(eps, sigma_t)
    if src == "v":  # direct formula avoids dividing by a tiny alpha
        a, s = _b(alpha_t, x), _b(sigma_t, x)
        x0 = (a * x - s * out) / (a**2 + s**2)
    else:
        x0 = eps_to_x0(eps, x, alpha_t, sigma_t)
    if dst == "x0":
        return x0
    return v_from(eps, x0, alpha_t, sigma_t)


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
    """

    def __init__(
        self,
        net: nn.Module | Callable[[Tensor, Tensor], Tensor],
        sde: LinearSDE,
        predicts: str = "eps",
        time_input: TimeInput = "t",
        sigma_data: float = 1.0,
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
        if not callable(time_input) and time_input not in TIME_INPUTS:
            raise ValueError(
                f"unknown time_input {time_input!r}; expected one of {names_list(TIME_INPUTS)} "
                "or a callable (sde, t) -> c"
            )
        self.net, self.sde, self.predicts, self.time_input = net, sde, predicts, time_input

    def conditioning(self, t: Tensor) -> Tensor:
        """The network's time input c for times ``t`` of shape ``(batch,)``."""
        if callable(self.time_input):
            return self.time_input(self.sde, t)
        if self.time_input == "t":
            return t
        if self.time_input == "log_snr":
            return self.sde.log_snr(t)
        alpha, sigma = self.sde.marginal(t)
        return sigma / alpha

    def net_output(self, x: Tensor, t: float | Tensor) -> Tensor:
        """The raw network output at (x, t); ``t`` is broadcast to shape ``(batch,)``."""
        tt = as_time(t, like=x)
        check_batch_time(tt, x.shape[0])
        tt = tt.expand(x.shape[0]) if tt.ndim == 0 or tt.shape[0] == 1 else tt
        tt = tt.reshape(x.shape[0])
        x_in = x
        if self.predicts == "edm":
            _, _, c_in, scale = self.edm_coefficients(tt)
            x_in = append_dims(c_in / scale, x.ndim) * x  # c_in x~ with x~ = x / alpha_t
        out = self.net(x_in, self.conditioning(tt))
        if out.shape != x.shape:
            raise ValueError(
                f"ScoreModel: net output must be shaped like x {tuple(x.shape)}, received "
                f"{tuple(out.shape)}"
            )
        return out

    def predict(self, x: Tensor, t: float | Tensor, kind: str) -> Tensor:
        """The prediction of kind ``kind`` ('eps', 'x0', 'v', 'score') at (x, t)."""
        tt = as_time(t, like=x)
        alpha, sigma = self.sde.marginal(tt)
        out = self.net_output(x, tt)
        if self.predicts == "edm":
            c_skip, c_out, _, scale = self.edm_coefficients(tt)
            x0 = append_dims(c_skip / scale, x.ndim) * x + append_dims(c_out, x.ndim) * out
            return convert(x0, x, alpha, sigma, "x0", kind)
        return convert(out, x, alpha, sigma, self.predicts, kind)

    def edm_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(c_skip, c_out, c_in, alpha_t) of the 'edm' preconditioning at times ``t``."""
        alpha, sigma = self.sde.marginal(t)
        s = sigma / alpha
        denom = s**2 + self.sigma_data**2
        c_skip = self.sigma_data**2 / denom
        c_out = s * self.sigma_data / torch.sqrt(denom)
        return c_skip, c_out, 1 / torch.sqrt(denom), alpha

    def score_fn(self, x: Tensor, t: float | Tensor) -> Tensor:
        """grad_x log p_t(x) as estimated by the network."""
        return self.predict(x, t, "score")

    def eps_fn(self, x: Tensor, t: float | Tensor) -> Tensor:
        """The noise estimate eps_theta(x, t) = -sigma_t score."""
        return self.predict(x, t, "eps")

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        """The x0 estimate E[x_0 | x_t = x] (Tweedie's formula)."""
        return self.predict(x, t, "x0")

    def forward(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Same as :meth:`score_fn`, so a ScoreModel is itself a score function."""
        return self.score_fn(x, t)

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
            c_skip, c_out, _, _ = self.edm_coefficients(tt)
            x_tilde = x0 + _b(sigma / alpha, x0) * noise
            return (x0 - _b(c_skip, x0) * x_tilde) / _b(c_out, x0)
        return eps_to_score(noise, sigma)


class DiscreteEpsScore:
    """A continuous VP score function built from a discrete DDPM eps-model (see the factory)."""

    def __init__(
        self, eps_model: Callable[[Tensor, Tensor], Tensor], sde: VPSDE, N: int, quantize: bool
    ) -> None:
        self.eps_model, self.sde, self.N, self.quantize = eps_model, sde, N, quantize

    def step_index(self, t: Tensor) -> Tensor:
        """The (fractional, or rounded if ``quantize``) DDPM step n with t_n = (n + 1) T / N."""
        n = t * (self.N / self.sde.T) - 1
        n = n.clamp(0, self.N - 1)
        return torch.round(n).long() if self.quantize else n

    def eps(self, x: Tensor, t: float | Tensor) -> Tensor:
        """eps_theta(x, n(t))."""
        tt = as_time(t, like=x)
        tt = tt.expand(x.shape[0]) if tt.ndim == 0 else tt
        return self.eps_model(x, self.step_index(tt))

    def __call__(self, x: Tensor, t: float | Tensor) -> Tensor:
        tt = as_time(t, like=x)
        _, sigma = self.sde.marginal(tt)
        return eps_to_score(self.eps(x, tt), sigma)


def from_discrete_eps_model(
    eps_model: Callable[[Tensor, Tensor], Tensor],
    betas: Tensor | list[float],
    *,
    quantize: bool = True,
    eps: float | None = None,
) -> tuple[VPSDE, DiscreteEpsScore]:
    """Adapt a discrete-time DDPM eps-model to a continuous VP SDE and score function.

    The SDE's log alpha_t^2 is piecewise linear in t through the knots
    ``(0, 0)`` and ``(t_n, log alpha_bar_n)`` with t_n = (n + 1) / N, so alpha_{t_n}^2 equals the
    table's alpha_bar_n exactly and beta(t) is piecewise constant (= N log(1 / (1 - beta_n))).

    Args:
        eps_model: ``eps_model(x, n)`` with integer steps n in 0..N-1 (a long tensor of shape
            ``(batch,)``), or float steps when ``quantize=False``.
        betas: The model's beta table (length N, e.g. DDPM's linspace(1e-4, 0.02, 1000)).
        quantize: Round t to the nearest integer step (models that accept only integers).
        eps: Smallest time used; defaults to t_0 = 1 / N, the first step of the chain.

    Returns:
        ``(sde, score_fn)``: a :class:`~scoresde.sde.VPSDE` with T = 1 and the score function.
    """
    table = DDPMSchedule.from_betas(betas)
    N = table.N
    t_knots = torch.cat([torch.zeros(1, dtype=torch.float64), table.times])
    b_knots = torch.cat([torch.zeros(1, dtype=torch.float64), -torch.log(table.alpha_bars)])
    sde = VPSDE(schedule=PiecewiseLinearIntegral(t_knots, b_knots), T=1.0, eps=eps or 1.0 / N)
    return sde, DiscreteEpsScore(eps_model, sde, N, quantize)


class DenoiserScore:
    """A score function built from an EDM-style denoiser D(x, sigma) (see :func:`from_denoiser`)."""

    def __init__(self, denoiser: Callable[[Tensor, Tensor], Tensor], sde: LinearSDE) -> None:
        self.denoiser, self.sde = denoiser, sde

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        """x0 estimate D(x_t / alpha_t, sigma_t / alpha_t)."""
        tt = as_time(t, like=x)
        tt = tt.expand(x.shape[0]) if tt.ndim == 0 else tt
        alpha, sigma = self.sde.marginal(tt)
        return self.denoiser(x / append_dims(alpha, x.ndim), sigma / alpha)

    def __call__(self, x: Tensor, t: float | Tensor) -> Tensor:
        tt = as_time(t, like=x)
        tt = tt.expand(x.shape[0]) if tt.ndim == 0 else tt
        alpha, sigma = self.sde.marginal(tt)
        return convert(self.denoise(x, tt), x, alpha, sigma, "x0", "score")


def from_denoiser(denoiser: Callable[[Tensor, Tensor], Tensor], sde: LinearSDE) -> DenoiserScore:
    """Adapt a denoiser D(x, sigma) ~ E[x_0 | x_0 + sigma n = x] (Karras et al. 2022) to ``sde``.

    Under any linear SDE, x_t / alpha_t = x_0 + (sigma_t / alpha_t) eps, so
    E[x_0 | x_t] = D(x_t / alpha_t, sigma_t / alpha_t) and the score follows from Tweedie's formula,
    score = (alpha_t x0_hat - x_t) / sigma_t^2. With a VE SDE (alpha_t = 1) this is EDM's
    sigma-parameterization exactly.

    Args:
        denoiser: ``D(x, sigma)`` with ``x`` of shape ``(batch, *dims)`` and ``sigma`` ``(batch,)``.
        sde: The linear SDE whose time axis the samplers use.

    Returns:
        A callable ``score_fn(x, t)`` with a ``denoise(x, t)`` method.
    """
    if not callable(denoiser):
        raise TypeError(f"from_denoiser: expected a callable D(x, sigma), received {denoiser!r}")
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"from_denoiser: expected a LinearSDE, received {type(sde).__name__}")
    return DenoiserScore(denoiser, sde)
