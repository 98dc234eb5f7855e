"""Run configuration: dataclasses for SDE, network, loss, data, optimizer and schedule.

A :class:`RunConfig` is the single description of a training run (DESIGN.md, contract 7: configs
live at the boundary; library functions take explicit arguments). It loads from and saves to JSON
or YAML, validates names against the registries (an unknown name lists the valid ones) and ranges
(with expected vs received), and is saved beside every checkpoint. :mod:`scoresde.cli.build`
turns it into objects.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .._readers import read_json, read_yaml
from .._utils import names_list
from ..distributed.atomic import atomic_write_text
from .config_fields import check, coerce

__all__ = [
    "DataConfig",
    "LossConfig",
    "NetConfig",
    "OptimConfig",
    "RunConfig",
    "SDEConfig",
    "ScheduleConfig",
]

OPTIMIZERS = ("adam", "adamw")
LR_DECAYS = ("none", "cosine")


@dataclass
class SDEConfig:
    """The forward SDE: ``name`` in ``scoresde.sde.SDES``; ``kwargs`` go to its constructor."""

    name: str = "vp"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class NetConfig:
    """The network (``scoresde.nets.NETS``) and how it is read by ``ScoreModel``.

    ``kwargs`` go to the network constructor; the data shape (``dim`` or ``in_channels`` and
    ``image_size``) is filled in from the dataset.
    """

    name: str = "mlp"
    predicts: str = "eps"
    time_input: str = "t"
    sigma_data: float = 1.0  # data std in model units, for predicts="edm"
    #: eps-models only: bound of the x0 estimate at low SNR (``ScoreModel(x0_clip=)``), so that
    #: deterministic samplers have no runaway paths; "auto" = 1.25 max|x| of the scaled test
    #: set, null = off.
    x0_clip: float | str | None = "auto"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig:
    """The objective (``scoresde.losses.LOSSES``) and its options."""

    name: str = "dsm"
    weighting: str = "sigma2"
    t_sampling: str = "uniform"
    reduction: str = "mean"
    gamma: float = 5.0
    num_steps: int = 1000  # DDPM chain length (loss "ddpm")
    num_scales: int = 1000  # SMLD noise levels (loss "smld")


@dataclass
class DataConfig:
    """The data source (``scoresde.data.DATASETS``); ``kwargs`` e.g. ``{"path": "x.npy"}``.

    ``labels: true`` trains a class-conditional model s(x, t | y) on the source's classes
    (digits, mnist, 8gaussians, checkerboard, a mixture with ``labels``): the network gets a label
    embedding with one row per class plus the null label, and each training label is replaced
    by the null label with probability ``label_dropout``, so the same network also learns the
    unconditional s(x, t | ∅) that classifier-free guidance needs (Ho & Salimans 2022).
    """

    name: str = "8gaussians"
    kwargs: dict[str, Any] = field(default_factory=dict)
    labels: bool = False
    label_dropout: float = 0.1


@dataclass
class OptimConfig:
    """Adam/AdamW with linear warm-up, optional cosine decay, clipping and an EMA of the weights."""

    name: str = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_decay: str = "none"  # "none" or "cosine" (to 0 at schedule.steps, after the warm-up)
    grad_clip: float | None = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = False  # ramp the EMA decay as min(ema_decay, (1 + n) / (10 + n))


@dataclass
class ScheduleConfig:
    """Steps, batch size, cadence of logs/checkpoints/evaluation, seed and the NaN guard."""

    steps: int = 10_000
    batch_size: int = 256
    seed: int = 0
    log_every: int = 100
    ckpt_every: int = 1000
    eval_every: int = 0
    t_bins: int = 10
    max_nan_steps: int = 10  # consecutive non-finite steps before giving up


_SECTIONS = {
    "sde": SDEConfig,
    "net": NetConfig,
    "loss": LossConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "schedule": ScheduleConfig,
}


@dataclass
class RunConfig:
    """A full training run: one dataclass per section."""

    sde: SDEConfig = field(default_factory=SDEConfig)
    net: NetConfig = field(default_factory=NetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    # -- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/YAML-safe)."""
        d = asdict(self)
        d["optim"]["betas"] = list(d["optim"]["betas"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build and validate from a nested dict; missing keys take defaults.

        Raises:
            ValueError: For unknown sections or keys (listing the valid ones) or bad values.
        """
        if not isinstance(d, dict):
            raise TypeError(f"config: expected a mapping, received {type(d).__name__}")
        unknown = set(d) - set(_SECTIONS)
        if unknown:
            raise ValueError(
                f"unknown config sections {sorted(unknown)}; expected one of {names_list(_SECTIONS)}"
            )
        parts = {}
        for name, klass in _SECTIONS.items():
            sub = d.get(name, {})
            if not isinstance(sub, dict):
                got = "null" if sub is None else repr(sub)
                raise TypeError(f"config section {name!r}: expected a mapping, received {got}")
            valid = [f.name for f in fields(klass)]
            bad = set(sub) - set(valid)
            if bad:
                raise ValueError(
                    f"unknown keys {sorted(bad)} in section {name!r}; expected one of "
                    f"{names_list(valid)}"
                )
            parts[name] = klass(**coerce(name, klass, sub))
        if "betas" in (d.get("optim") or {}):
            parts["optim"].betas = tuple(parts["optim"].betas)
        cfg = cls(**parts)
        cfg.validate()
        return cfg

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Parse JSON text."""
        return cls.from_dict(read_json(text, "config"))

    def to_yaml(self) -> str:
        """YAML text."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    @classmethod
    def from_yaml(cls, text: str) -> RunConfig:
        """Parse YAML text (a safe loader: no code runs; tags and duplicate keys are refused)."""
        d = read_yaml(text, "config")
        return cls.from_dict({} if d is None else d)

    def save(self, path: str | Path) -> None:
        """Write JSON or YAML (by suffix)."""
        path = Path(path)
        text = self.to_yaml() if path.suffix in (".yaml", ".yml") else self.to_json()
        atomic_write_text(path, text)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a ``.json``, ``.yaml`` or ``.yml`` file.

        Raises:
            FileNotFoundError: If the file is missing.
            ValueError: For an unsupported suffix or an invalid config.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--config: expected an existing file, received {path}")
        if path.suffix in (".yaml", ".yml"):
            return cls.from_yaml(path.read_text())
        if path.suffix == ".json":
            return cls.from_json(path.read_text())
        raise ValueError(
            f"unsupported config suffix {path.suffix!r}; expected one of "
            f"{names_list(['.json', '.yaml', '.yml'])}"
        )

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> None:
        """Check names against the registries and numeric ranges.

        Raises:
            ValueError: Naming the field, the expected range or names, and the received value.
        """
        from scoresde.data import DATASETS
        from scoresde.losses import LOSSES, REDUCTIONS, T_SAMPLINGS, WEIGHTINGS
        from scoresde.nets import NETS
        from scoresde.parameterization import MODEL_OUTPUTS, TIME_INPUTS
        from scoresde.sde import SDES

        for what, value, valid in (
            ("sde.name", self.sde.name, SDES),
            ("net.name", self.net.name, NETS),
            ("net.predicts", self.net.predicts, MODEL_OUTPUTS),
            ("net.time_input", self.net.time_input, TIME_INPUTS),
            ("loss.name", self.loss.name, LOSSES),
            ("loss.weighting", self.loss.weighting, WEIGHTINGS),
            ("loss.t_sampling", self.loss.t_sampling, T_SAMPLINGS),
            ("loss.reduction", self.loss.reduction, REDUCTIONS),
            ("data.name", self.data.name, DATASETS),
            ("optim.name", self.optim.name, OPTIMIZERS),
            ("optim.lr_decay", self.optim.lr_decay, LR_DECAYS),
        ):
            if value not in valid:
                raise ValueError(f"unknown {what} {value!r}; expected one of {names_list(valid)}")
        o, s = self.optim, self.schedule
        check(o.lr > 0 and math.isfinite(o.lr), "optim.lr", "a finite number > 0", o.lr)
        check(o.weight_decay >= 0, "optim.weight_decay", ">= 0", o.weight_decay)
        check(
            len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
            "optim.betas",
            "two numbers in [0, 1)",
            o.betas,
        )
        check(o.grad_clip is None or o.grad_clip > 0, "optim.grad_clip", "> 0 or null", o.grad_clip)
        check(0 <= o.ema_decay < 1, "optim.ema_decay", "in [0, 1)", o.ema_decay)
        check(o.warmup_steps >= 0, "optim.warmup_steps", "an integer >= 0", o.warmup_steps)
        check(self.loss.gamma > 0, "loss.gamma", "> 0", self.loss.gamma)
        p = self.data.label_dropout
        check(0 <= p < 1, "data.label_dropout", "a probability in [0, 1)", p)
        sd, clip = self.net.sigma_data, self.net.x0_clip
        check(
            clip in ("auto", None) or 0 < clip < math.inf,  # type: ignore[operator]  # clip: float past the "auto"/None test
            "net.x0_clip",
            "'auto', null or a number > 0",
            clip,
        )
        check(isinstance(sd, (int, float)) and 0 < sd < math.inf, "net.sigma_data", "> 0", sd)
        for name in ("steps", "batch_size", "log_every", "ckpt_every", "t_bins", "max_nan_steps"):
            v = getattr(s, name)
            check(isinstance(v, int) and v >= 1, f"schedule.{name}", "an integer >= 1", v)
        check(0 <= s.seed <= 2**63 - 1, "schedule.seed", "an integer in 0..2**63-1", s.seed)
        check(
            isinstance(s.eval_every, int) and s.eval_every >= 0,
            "schedule.eval_every",
            "an integer >= 0 (0 = never)",
            s.eval_every,
        )
