"""The layers a :class:`forecast.models.WaveNet` is built from: the gated residual block,
the linear path, and one output of a conv computed as a matrix product."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forecast.conv import conv1d


def at_one(conv: nn.Module, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """One output of a (grouped) conv whose input x [B, G*I, k] holds exactly its k taps.

    -> [B, G*O]: per group a matrix product, which on a CPU costs a fraction of a
    convolution call's set-up for a single position.
    """
    w = conv.weight if weight is None else weight  # [G*O, I, k]
    g, (go, i, k) = conv.groups, w.shape
    out = torch.einsum("bgi,goi->bgo", x.reshape(x.shape[0], g, i * k),
                       w.reshape(g, go // g, i * k)).reshape(x.shape[0], go)
    return out if conv.bias is None else out + conv.bias


class ResidualBlock(nn.Module):
    """Gated dilated conv with residual and skip 1x1 convs, for ``members`` nets at once.

    Members are independent nets held as conv groups: channels are laid out member
    by member, and no weight connects two members.
    """

    def __init__(
        self, channels: int, skip_channels: int, kernel_size: int, dilation: int,
        causal: bool, dropout: float, members: int = 1, impl: str = "pad",
    ) -> None:
        super().__init__()
        self.members, self.kernel_size = members, kernel_size
        self.conv = conv1d(members * channels, members * 2 * channels, kernel_size, dilation,
                           causal, groups=members, impl=impl)
        self.residual = nn.Conv1d(members * channels, members * channels, 1, groups=members)
        self.skip = nn.Conv1d(members * channels, members * skip_channels, 1, groups=members)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, t = x.shape
        # [B, K*2C, T] -> [B, K, 2C, T] -> filter, gate -> [B, K*C, T]
        filt, gate = self.conv(x).view(b, self.members, -1, t).chunk(2, dim=2)
        h = self.dropout((torch.tanh(filt) * torch.sigmoid(gate)).reshape(b, -1, t))
        return x + self.residual(h), self.skip(h)

    def valid(
        self, x: torch.Tensor, dilation: int, stride: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unpadded block on a grid of positions: x [B, K*C, n] -> (next [B, K*C, m], gated).

        ``dilation`` is the block's dilation in grid steps; outputs are taken every ``stride``
        grid steps, the last one at the last input position (``n - 1 - (k-1)*dilation`` must
        be a multiple of ``stride``). ``gated`` [B, K*C, m] feeds the skip conv.
        """
        conv = self.conv.conv
        k = self.kernel_size
        # the causal taps (offsets -(k-1)*d .. 0): the padded conv's own weight, or the
        # first k taps of the masked centred kernel
        w = conv.weight if self.conv.impl == "pad" else self.conv.kernel()[..., :k]
        y = F.conv1d(x, w, conv.bias, stride=stride, dilation=dilation,
                     groups=conv.groups)  # [B, K*2C, m]
        b, _, m = y.shape
        filt, gate = y.view(b, self.members, -1, m).chunk(2, dim=2)
        h = self.dropout((torch.tanh(filt) * torch.sigmoid(gate)).reshape(b, -1, m))
        first = (k - 1) * dilation
        return x[..., first::stride] + self.residual(h), h


class LinearPath(nn.Module):
    """Direct linear forecast: P lags of the target (feature 0) and Q lags of every feature.

    (batch, F, T) -> (batch, H, T). Both kernels are length-preserving convs with the
    same padding rule as the dilated stack, so the path is causal exactly when the net
    is. Its weights can be set by a closed-form ridge fit (``forecast.linear``).
    """

    def __init__(self, n_features: int, horizon: int, lags: int, causal: bool,
                 feature_lags: int = 1) -> None:
        super().__init__()
        self.lags, self.feature_lags = lags, feature_lags
        self.lag = conv1d(1, horizon, lags, 1, causal)
        self.lag.conv.bias = None  # the feature conv holds the one bias
        self.point = conv1d(n_features, horizon, feature_lags, 1, causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lag(x[:, :1]) + self.point(x)

    def last(self, x: torch.Tensor) -> torch.Tensor:
        """The causal path's output at the last step alone, each kernel applied once:
        x [B, T, F] -> [B, H] (``forward(x.transpose(1, 2))[..., -1]``)."""
        p, q = self.lags, self.feature_lags
        span = max(p, q)
        if x.shape[1] < span:  # steps before the window hold zeros, as the padding does
            x = F.pad(x, (0, 0, span - x.shape[1], 0))
        taps = x.transpose(1, 2)  # [B, F, T]: tap k of each kernel reads step T - P + k
        return (at_one(self.lag.conv, taps[:, :1, -p:])
                + at_one(self.point.conv, taps[..., -q:]))
