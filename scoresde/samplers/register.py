"""Where a sampler registers: ``@register(name, **spec)`` on the function that runs it.

A sampler is written once, as a *body* that receives the validated run:

    @register("ddim", order=1.0, **EXPONENTIAL)
    def sample_ddim(run: SamplerRun, *, eta: float = 0.0) -> tuple[Tensor, SampleInfo]:
        return run.loop(run.x_T, _ddim_step(run, eta))

:func:`register` builds the :class:`~scoresde.samplers.SamplerSpec` (the name is written here
and nowhere else; the few-step defaults per SDE and NFE band are
:data:`~scoresde.samplers.defaults.TABLE`'s), enters it in :data:`SAMPLERS`, and returns a :class:`RegisteredSampler`: the function
users call, with the shared signature of :class:`~scoresde.samplers.Sampler`,

    sample_ddim(sde, score_fn, x_T, grid, *, generator=None, callback=None, eta=0.0, **options)

It splits the keyword options into the body's own (its keyword-only parameters) and the common
ones, builds the run with :func:`~scoresde.samplers.run.prepare` from the spec (which SDEs the
sampler supports, its name in messages and in ``SampleInfo``), and calls the body.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._utils import names_list
from ..sde import LinearSDE, ScoreFn
from .run import prepare
from .signature import Callback, SampleInfo, Sampler
from .spec import SamplerSpec

__all__ = ["SAMPLERS", "Body", "RegisteredSampler", "get_sampler", "register"]

#: A sampler's body: ``body(run, **own_options) -> (x, info)``.
Body = Callable[..., tuple[Tensor, SampleInfo]]

#: Every registered sampler by name, with its spec and measured few-step defaults.
#: (Complete, and in the declared order, once :mod:`scoresde.samplers.registry` is loaded.)
SAMPLERS: dict[str, SamplerSpec] = {}

_COMMON = inspect.signature(Sampler.__call__).parameters


class RegisteredSampler:
    """A registered sampler: the body behind the shared signature, and its spec.

    Args:
        body: ``body(run, **own)``; every parameter after ``run`` is keyword-only.
        name: The registry name.
        meta: The :class:`~scoresde.samplers.SamplerSpec` fields besides ``name`` and ``fn``.
    """

    __name__: str

    def __init__(self, body: Body, name: str, meta: dict[str, Any]) -> None:
        params = list(inspect.signature(body).parameters.values())
        if not params or any(p.kind is not p.KEYWORD_ONLY for p in params[1:]):
            raise TypeError(
                f"register({name!r}): expected body(run, *, option=default, ...), received "
                f"{body.__qualname__}{inspect.signature(body)}"
            )
        self.body, self.own = body, tuple(p.name for p in params[1:])
        self.__name__ = self.__qualname__ = body.__name__
        self.__module__, self.__doc__ = body.__module__, body.__doc__
        self.__signature__ = inspect.Signature(
            [p for k, p in _COMMON.items() if k not in ("self", "options")]
            + params[1:]
            + [_COMMON["options"]],
            return_annotation=inspect.signature(body).return_annotation,
        )
        self.spec = SamplerSpec(name, self, **meta)

    def __call__(
        self,
        sde: LinearSDE,
        score_fn: ScoreFn,
        x_T: Tensor,
        grid: Tensor,
        *,
        generator: torch.Generator | None = None,
        callback: Callback | None = None,
        **options: Any,
    ) -> tuple[Tensor, SampleInfo]:
        """Validate the inputs (:func:`~scoresde.samplers.run.prepare`) and run the body."""
        own = {k: options.pop(k) for k in self.own if k in options}
        run = prepare(self.spec, sde, score_fn, x_T, grid, generator, callback, options, self.own)
        return self.body(run, **own)

    def __repr__(self) -> str:
        return f"<sampler {self.spec.name!r}: {self.__module__}.{self.__name__}>"

    def __reduce__(self) -> tuple[Callable[[str], RegisteredSampler], tuple[str]]:
        return registered, (self.spec.name,)


def registered(name: str) -> RegisteredSampler:
    """The sampler registered as ``name`` (how a :class:`RegisteredSampler` unpickles)."""
    fn = SAMPLERS[name].fn
    assert isinstance(fn, RegisteredSampler)  # every entry is made by register()
    return fn


def register(name: str, **meta: Any) -> Callable[[Body], RegisteredSampler]:
    """Register the decorated body as the sampler ``name`` with the spec fields ``meta``.

    Args:
        name: The registry name: a new key of :data:`SAMPLERS`.
        **meta: :class:`~scoresde.samplers.SamplerSpec` fields (``stochastic``, ``order``,
            ``sdes``, ``nfe_per_step``, ...); the few-step defaults come from
            :data:`~scoresde.samplers.defaults.TABLE`.

    Returns:
        A decorator that turns ``body(run, *, option=default, ...)`` into the
        :class:`RegisteredSampler` users call.

    Raises:
        ValueError: If ``name`` is taken.
    """
    if name in SAMPLERS:
        raise ValueError(f"register: a sampler {name!r} is registered already")

    def decorate(body: Body) -> RegisteredSampler:
        fn = RegisteredSampler(body, name, meta)
        SAMPLERS[name] = fn.spec
        return fn

    return decorate


def get_sampler(name: str) -> SamplerSpec:
    """The :class:`SamplerSpec` called ``name``; ValueError listing the valid names otherwise."""
    if not isinstance(name, str) or name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {names_list(SAMPLERS)}")
    return SAMPLERS[name]
