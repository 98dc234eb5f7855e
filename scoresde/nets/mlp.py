"""Residual MLP for vector data ``x`` of shape ``(batch, dim)``, conditioned on ``c``.

Each block is ``h <- h + W2 silu(W1 silu(LN(h)) + E(c))``: the time embedding ``E(c)`` enters
every block (as in the residual blocks of Ho et al. 2020). The output layer starts at zero, so an
untrained network predicts ``0`` (for ``predicts="eps"`` the prior guess ``E[eps] = 0``).

Optionally the input ``x`` is also given random Fourier features ``[sin(2 pi x B), cos(2 pi x B)]``
with fixed ``B ~ N(0, s^2)`` of shape ``(dim, m)`` (Tancik et al. 2020): an MLP of SiLU units
learns sharp features in ``x`` (the edges of a checkerboard's density, where the score at small
noise changes over a distance sigma_t) far faster with them.

With ``num_classes`` set the network is class-conditional, ``net(x, c, y)``: a label embedding
(``num_classes + 1`` rows, the last one the null label) is added to the time embedding, so one
network gives both s(x, t | y) and, with ``y = None``, s(x, t | ∅) for classifier-free guidance
(Ho & Salimans 2022). ``num_classes=None`` (default) builds exactly the unconditional network.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from scoresde.nets.embeddings import (
    add_label,
    check_time_input,
    label_embedding,
    make_embedding,
)

__all__ = ["ResidualMLP"]


class _Block(nn.Module):
    def __init__(self, hidden: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.emb = nn.Linear(emb_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.drop = nn.Dropout(dropout)
        self.act = nn.SiLU()

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        z = self.fc1(self.act(self.norm(h))) + self.emb(emb)
        return h + self.fc2(self.drop(self.act(z)))


class ResidualMLP(nn.Module):
    """MLP ``net(x, c[, y])`` with residual blocks and time (and label) injected in every block.

    Args:
        dim: Data dimension ``d``; input and output have shape ``(batch, d)``.
        hidden: Width of the residual stream.
        depth: Number of residual blocks.
        time_embedding: ``"fourier"`` or ``"sinusoidal"``.
        embed_dim: Size of the time embedding.
        time_scale: Scale of the embedding (``None``: 16 for Fourier, 1000 for sinusoidal).
        dropout: Dropout probability inside blocks.
        generator: Generator for the random Fourier frequencies (time, then input features).
        fourier_features: Number m of random Fourier features of the input ``x`` (0: none).
        fourier_scale: Standard deviation s of their frequencies, in cycles per unit of ``x``.
        num_classes: Number of classes K of a class-conditional network (``None``: none).

    Shapes:
        ``x``: ``(batch, dim)``; ``c``: ``(batch,)`` or scalar; ``y``: ``(batch,)`` labels in
        ``0..K`` (K the null label), an int, or ``None``; output: ``(batch, dim)``.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 128,
        depth: int = 3,
        time_embedding: str = "fourier",
        embed_dim: int = 64,
        time_scale: float | None = None,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, received {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), received {dropout}")
        if (
            isinstance(fourier_features, bool)
            or not isinstance(fourier_features, int)
            or (fourier_features < 0)
        ):
            raise ValueError(
                f"fourier_features must be an integer >= 0, received {fourier_features!r}"
            )
        if not (isinstance(fourier_scale, (int, float)) and 0 < fourier_scale < float("inf")):
            raise ValueError(f"fourier_scale must be > 0, received {fourier_scale!r}")
        self.dim = dim
        self._config = {
            "name": "mlp",
            "dim": dim,
            "hidden": hidden,
            "depth": depth,
            "time_embedding": time_embedding,
            "embed_dim": embed_dim,
            "time_scale": time_scale,
            "dropout": dropout,
        }
        if fourier_features:  # absent from the configs of networks without them
            self._config.update(fourier_features=fourier_features, fourier_scale=fourier_scale)
        self.num_classes = num_classes
        if num_classes is not None:  # absent from the configs of unconditional networks
            self._config["num_classes"] = num_classes
        self.embed = nn.Sequential(
            make_embedding(time_embedding, embed_dim, time_scale, generator),
            nn.Linear(embed_dim, embed_dim),
            nn.SiLU(),
        )
        B = None
        if fourier_features:
            B = torch.randn(dim, fourier_features, generator=generator) * fourier_scale
        self.fourier: Tensor | None
        self.register_buffer("fourier", B)
        self.inp = nn.Linear(dim + 2 * fourier_features, hidden)
        self.blocks = nn.ModuleList(_Block(hidden, embed_dim, dropout) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # Built last, so the other parameters keep their names and initial values.
        self.label_embed = label_embedding(num_classes, embed_dim)

    def config(self) -> dict[str, object]:
        """Registry name and constructor arguments (for :func:`scoresde.nets.net_from_config`)."""
        return dict(self._config)

    def forward(self, x: Tensor, c: Tensor, y: Tensor | int | None = None) -> Tensor:
        """Evaluate the network on ``x`` of shape ``(batch, dim)`` at ``c``, label ``y``."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"ResidualMLP expects x of shape (batch, {self.dim}), received {tuple(x.shape)}"
            )
        emb = self.embed(check_time_input(x, c))
        emb = add_label(emb, self.label_embed, y, "ResidualMLP")
        if self.fourier is not None:
            proj = 2 * torch.pi * x @ self.fourier.to(x.dtype)
            x = torch.cat([x, torch.sin(proj), torch.cos(proj)], dim=1)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(torch.nn.functional.silu(self.out_norm(h)))
