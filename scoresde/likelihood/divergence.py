"""The probability-flow drift together with its divergence, from one score evaluation.

The PF-ODE of a linear SDE (Song et al. 2021, Eq. 13) has drift

    v(x, t) = f(x, t) - 1/2 g(t)^2 s(x, t),   f(x, t) = a(t) x,

so its divergence is div v = a(t) D - 1/2 g(t)^2 div s, with D the number of entries of one
sample: the linear part is exact and only the score's divergence (the trace of its Jacobian) is
computed numerically. One call to :func:`torch.func.vjp` evaluates the score once (the *primal*)
and returns a pullback that is then applied to many cotangents:

* exact: the D basis vectors e_i (the same e_i for every sample of the batch, since samples are
  independent), tr(ds/dx) = sum_i e_i^T (ds/dx) e_i, in chunks of basis vectors so that memory
  stays bounded (``chunk_size * batch * D`` entries at a time);
* Hutchinson (Hutchinson 1989; Grathwohl et al. 2019): fixed probes eps with E[eps eps^T] = I,
  tr(ds/dx) ~ eps^T (ds/dx) eps, one estimate per probe.

Cost per call: one forward pass of ``score_fn`` plus D (exact) or ``n_probes`` (Hutchinson)
vector-Jacobian products, each about as expensive as one forward pass. Chunks of cotangents are
vectorised with :func:`torch.func.vmap`; score functions that vmap cannot handle fall back to a
plain loop over the cotangents (same result, same count).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from .._utils import names_list

__all__ = [
    "PROBES",
    "check_score",
    "draw_probes",
    "probes_from_seeds",
    "score_and_divergence",
    "score_and_probe_products",
]

#: Probe distributions for Hutchinson's estimator: both have E[eps eps^T] = I.
PROBES: tuple[str, ...] = ("rademacher", "gaussian")
#: Entries of the largest cotangent chunk (chunk * batch * D); 2**19 keeps chunks in cache.
_CHUNK_ELEMENTS = 1 << 19


def draw_probes(
    kind: Literal["rademacher", "gaussian"] | str,
    shape: tuple[int, ...],
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw Hutchinson probes with E[eps eps^T] = I.

    Args:
        kind: ``"rademacher"`` (entries +-1 with probability 1/2) or ``"gaussian"`` (N(0, 1)).
        shape: Output shape, e.g. ``(n_probes, batch, *dims)``.
        generator: Optional generator for reproducible draws.
        dtype: Floating dtype of the probes.
        device: Device of the probes (defaults to the generator's).

    Returns:
        A tensor of the given shape.

    Raises:
        ValueError: if ``kind`` is not one of :data:`PROBES`.
    """
    if kind not in PROBES:
        raise ValueError(f"unknown probe {kind!r}; expected one of {names_list(PROBES)}")
    if generator is not None and device is None:
        device = generator.device
    if kind == "gaussian":
        return torch.randn(shape, generator=generator, dtype=dtype, device=device)
    bits = torch.randint(0, 2, shape, generator=generator, device=device)
    return (2 * bits - 1).to(dtype or torch.get_default_dtype())


def probes_from_seeds(
    kind: Literal["rademacher", "gaussian"] | str,
    seeds: Sequence[int],
    n_probes: int,
    dims: Sequence[int],
    *,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Hutchinson probes per sample: column i from ``torch.Generator().manual_seed(seeds[i])``.

    Sample i's probes then do not depend on the other samples of its batch, so a sharded run
    gives every sample the same probes at any world size or batch split.

    Args:
        kind: ``"rademacher"`` or ``"gaussian"``.
        seeds: One integer per sample.
        n_probes: Probes per sample.
        dims: The shape of one sample.
        dtype: Floating dtype of the probes.

    Returns:
        A CPU tensor of shape ``(n_probes, len(seeds), *dims)``.

    Raises:
        ValueError: for an unknown ``kind`` or non-integer seeds.
    """
    seeds = list(seeds)
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds: expected one integer seed per sample, received {seeds[:3]!r}...")
    shape = (n_probes, *dims)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    cols = [draw_probes(kind, shape, generator=g, dtype=dtype) for g in gens]
    return torch.stack(cols, dim=1)


def _pullbacks(
    vjp_fn: Callable[[Tensor], tuple[Tensor, ...]], cotangents: Tensor, use_vmap: bool
) -> Tensor:
    """``vjp_fn`` applied to each cotangent along dim 0, stacked on dim 0."""
    if use_vmap:
        try:
            return torch.func.vmap(vjp_fn)(cotangents)[0]
        except (RuntimeError, NotImplementedError, ValueError, TypeError):
            pass  # a score function vmap cannot trace: loop instead (same numbers)
    return torch.stack([vjp_fn(c)[0] for c in cotangents])


def check_score(s: Tensor, x: Tensor) -> None:
    """Raise ``ValueError`` unless the score output ``s`` is shaped like the state ``x``."""
    if s.shape != x.shape:
        raise ValueError(
            f"score_fn: expected an output shaped like x {tuple(x.shape)}, received "
            f"{tuple(s.shape)}"
        )


def score_and_divergence(
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    t: Tensor,
    *,
    chunk_size: int | None = None,
    use_vmap: bool = True,
) -> tuple[Tensor, Tensor]:
    """s(x, t) and the exact trace of its Jacobian per sample, from one score evaluation.

    Args:
        score_fn: ``score_fn(x, t)``, shaped like ``x``; samples must not interact.
        x: States of shape ``(batch, *dims)``; let D = prod(dims).
        t: A scalar time or times of shape ``(batch,)``.
        chunk_size: Basis vectors per vectorised pullback; by default as many as keep
            ``chunk_size * batch * D`` under 2**19 entries.
        use_vmap: Vectorise each chunk with :func:`torch.func.vmap` (else loop).

    Returns:
        ``(s, div_s)`` with shapes ``(batch, *dims)`` and ``(batch,)``.
    """
    B, D = x.shape[0], x[0].numel()
    s, vjp_fn = torch.func.vjp(lambda y: score_fn(y, t), x)[:2]
    check_score(s, x)
    if chunk_size is None:
        chunk_size = max(1, min(D, _CHUNK_ELEMENTS // max(1, B * D)))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected an integer >= 1 or None, received {chunk_size!r}")
    div = x.new_zeros(B)
    for start in range(0, D, chunk_size):
        stop = min(start + chunk_size, D)
        n = stop - start
        basis = x.new_zeros(n, B, D)
        basis[torch.arange(n), :, torch.arange(start, stop)] = 1  # e_i for every sample
        rows = _pullbacks(vjp_fn, basis.reshape(n, *x.shape), use_vmap).reshape(n, B, D)
        div += rows[:, :, start:stop].diagonal(dim1=0, dim2=2).sum(-1)  # sum_i (J^T e_i)_i
    return s, div


def score_and_probe_products(
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    t: Tensor,
    probes: Tensor,
    *,
    use_vmap: bool = True,
) -> tuple[Tensor, Tensor]:
    """s(x, t) and the Hutchinson estimates eps^T (ds/dx) eps, one per probe and sample.

    Args:
        score_fn: ``score_fn(x, t)``, shaped like ``x``.
        x: States of shape ``(batch, *dims)``.
        t: A scalar time or times of shape ``(batch,)``.
        probes: Probes of shape ``(n_probes, batch, *dims)``.
        use_vmap: Vectorise over probes with :func:`torch.func.vmap` (else loop).

    Returns:
        ``(s, est)`` with shapes ``(batch, *dims)`` and ``(n_probes, batch)``.
    """
    s, vjp_fn = torch.func.vjp(lambda y: score_fn(y, t), x)[:2]
    check_score(s, x)
    vjps = _pullbacks(vjp_fn, probes, use_vmap)  # eps^T J, shape (n_probes, batch, *dims)
    return s, (vjps * probes).flatten(2).sum(-1)
