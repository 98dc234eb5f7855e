"""Small U-Net for images ``x`` of shape ``(batch, channels, H, W)``, conditioned on ``c``.

Follows the DDPM / NCSN++ design (Ho et al. 2020; Song et al. 2021, Appendix H) at CPU size:
residual blocks with GroupNorm, the time embedding injected by scale-and-shift
``h <- GN(h) * (1 + s(c)) + b(c)`` (FiLM, as in improved DDPM), optional self-attention at
the low resolutions listed in ``attn_resolutions``, strided-convolution downsampling and
nearest-neighbour upsampling to the skip connection's size (so odd sizes such as 28 -> 14 -> 7
work). The last convolution starts at zero. Defaults suit 8x8 digits; for 28x28 use
``channel_mult=(1, 2, 2)``.

With ``num_classes`` set the U-Net is class-conditional, ``net(x, c, y)``: a label embedding
(``num_classes + 1`` rows, the last one the null label of classifier-free guidance, Ho & Salimans
2022) is added to the time embedding before it reaches the blocks. ``num_classes=None`` (default)
builds exactly the unconditional network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scoresde.nets.embeddings import add_label, check_time_input, label_embedding, make_embedding

__all__ = ["UNet"]


def _groups(channels: int) -> int:
    for g in (32, 16, 8, 4, 2, 1):
        if channels % g == 0 and channels // g >= 2:
            return g
    return 1


class ResBlock(nn.Module):
    """GroupNorm residual block with scale-and-shift time conditioning."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)  # type: ignore[arg-type]  # bias=True: never None
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over spatial positions, with a residual connection."""

    def __init__(self, channels: int, heads: int = 1) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)  # type: ignore[arg-type]  # bias=True: never None

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, H * W).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.mT)
        return x + self.proj(out.transpose(-1, -2).reshape(B, C, H, W))


class UNet(nn.Module):
    """U-Net ``net(x, c[, y])`` for images.

    Args:
        in_channels: Image channels (output has the same number).
        base_channels: Channels at full resolution.
        channel_mult: Channel multiplier per resolution level; one downsampling between levels.
        num_res_blocks: Residual blocks per level (encoder); the decoder has one more.
        attn_resolutions: Spatial sizes (side length) at which to add self-attention.
        heads: Attention heads.
        dropout: Dropout probability inside residual blocks.
        time_embedding: ``"sinusoidal"`` or ``"fourier"``.
        time_scale: Embedding scale (``None``: class default).
        image_size: Side length of the expected input (used for ``attn_resolutions``).
        generator: Generator for random Fourier frequencies.
        num_classes: Number of classes K of a class-conditional U-Net (``None``: none).

    Shapes:
        ``x``: ``(batch, in_channels, H, W)``; ``c``: ``(batch,)`` or scalar; ``y``: ``(batch,)``
        labels in ``0..K`` (K the null label), an int, or ``None``; output like ``x``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 32,
        channel_mult: Sequence[int] = (1, 2),
        num_res_blocks: int = 1,
        attn_resolutions: Sequence[int] = (4,),
        heads: int = 1,
        dropout: float = 0.0,
        time_embedding: str = "sinusoidal",
        time_scale: float | None = None,
        image_size: int = 8,
        generator: torch.Generator | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if in_channels < 1 or base_channels < 1 or num_res_blocks < 1 or not channel_mult:
            raise ValueError(
                "in_channels, base_channels, num_res_blocks must be >= 1 and channel_mult "
                f"non-empty; received {in_channels}, {base_channels}, {num_res_blocks}, "
                f"{tuple(channel_mult)}"
            )
        self.in_channels = in_channels
        self._config = {
            "name": "unet",
            "in_channels": in_channels,
            "base_channels": base_channels,
            "channel_mult": list(channel_mult),
            "num_res_blocks": num_res_blocks,
            "attn_resolutions": list(attn_resolutions),
            "heads": heads,
            "dropout": dropout,
            "time_embedding": time_embedding,
            "time_scale": time_scale,
            "image_size": image_size,
        }
        self.num_classes = num_classes
        if num_classes is not None:  # absent from the configs of unconditional networks
            self._config["num_classes"] = num_classes
        emb_dim = 4 * base_channels
        self.embed = nn.Sequential(
            make_embedding(time_embedding, base_channels, time_scale, generator),
            nn.Linear(base_channels, emb_dim),
            nn.SiLU(),
            nn.Linear(emb_dim, emb_dim),
        )
        self.inp = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down, skips, ch, size = nn.ModuleList(), [base_channels], base_channels, image_size
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                attn = (
                    SelfAttention(mult * base_channels, heads) if size in attn_resolutions else None
                )
                self.down.append(
                    nn.ModuleList(
                        [
                            ResBlock(ch, mult * base_channels, emb_dim, dropout),
                            attn or nn.Identity(),
                        ]
                    )
                )
                ch = mult * base_channels
                skips.append(ch)
            if level < len(channel_mult) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
                size = (size + 1) // 2
        self.mid1 = ResBlock(ch, ch, emb_dim, dropout)
        self.mid_attn = SelfAttention(ch, heads)
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout)
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for _ in range(num_res_blocks + 1):
                c_out = mult * base_channels
                attn = SelfAttention(c_out, heads) if size in attn_resolutions else None
                self.up.append(
                    nn.ModuleList(
                        [ResBlock(ch + skips.pop(), c_out, emb_dim, dropout), attn or nn.Identity()]
                    )
                )
                ch = c_out
            if level > 0:
                self.up.append(nn.Conv2d(ch, ch, 3, padding=1))
                size = size * 2
        self.out_norm = nn.GroupNorm(_groups(ch), ch)
        self.out = nn.Conv2d(ch, in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]  # bias=True: never None
        # Built last, so the other parameters keep their names and initial values.
        self.label_embed = label_embedding(num_classes, emb_dim)

    def config(self) -> dict[str, object]:
        """Registry name and constructor arguments (for :func:`scoresde.nets.net_from_config`)."""
        return dict(self._config)

    def forward(self, x: Tensor, c: Tensor, y: Tensor | int | None = None) -> Tensor:
        """Evaluate the network on ``x`` of shape ``(batch, C, H, W)`` at ``c``, label ``y``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects x of shape (batch, {self.in_channels}, H, W), "
                f"received {tuple(x.shape)}"
            )
        emb = add_label(self.embed(check_time_input(x, c)), self.label_embed, y, "UNet")
        h = self.inp(x)
        hs = [h]
        for layer in self.down:
            if isinstance(layer, nn.ModuleList):
                h = layer[1](layer[0](h, emb))
            else:
                h = layer(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for layer in self.up:
            if isinstance(layer, nn.ModuleList):
                h = layer[1](layer[0](torch.cat([h, hs.pop()], dim=1), emb))
            else:  # upsample to the size of the next skip connection, then convolve
                h = layer(F.interpolate(h, size=hs[-1].shape[-2:], mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))
