"""Streaming forecasts: one new observation costs one position per layer.

A causal net's output at step t reads, in block j, its input at t, t - d_j, ...,
t - (k - 1) * d_j. So each block keeps the last ``(k - 1) * d_j`` activations of its
input (its state), and a new step appends one column to each and computes one output
per block: O(layers) work instead of O(R x layers). The state is a tuple of plain
tensors, one per block, shaped ``[B, members * channels, (k - 1) * d_j]``, batched over
any number of series; :func:`step` is stateless (state in, state out), so it exports.
With a linear path its past inputs follow the blocks' states; with level features
(``model.level_window``) their last W - 1 raw values come last.

A zero state is what ``forward`` sees before a window's first step (its zero padding),
so a stream started from :func:`zero_state` at a series' first step equals the full
recompute at every step; :func:`init_state` gets the same state from a history.
A non-causal net reads steps after t, which a stream has not seen: it is refused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forecast.inputs import scaled
from forecast.layers import at_one
from forecast.module import ForecastModule

State = tuple[torch.Tensor, ...]


def check_streamable(model: ForecastModule) -> None:
    """Raise a one-line ``ValueError`` unless ``model`` is causal."""
    if not model.hparams.causal:
        raise ValueError(
            f"model '{model.hparams.name}' is not causal: its forecast at step t reads "
            f"{(model.receptive_field - 1) // 2} steps after t, which a stream has not seen; "
            "stream a causal checkpoint"
        )


def state_widths(model: ForecastModule) -> list[int]:
    """Past activations each block keeps: ``(k - 1) * d``."""
    return [(model.net.kernel_size - 1) * d for d in model.net.dilations]


def linear_width(model: ForecastModule) -> int:
    """Past input steps the linear path keeps: ``max(P, Q) - 1`` (0: no linear path)."""
    lin = model.net.linear
    return max(lin.lags, lin.feature_lags) - 1 if lin is not None else 0


def zero_state(model: ForecastModule, batch: int, dtype: torch.dtype = torch.float32,
               device: torch.device | str = "cpu") -> State:
    """The state before a series' first step (what ``forward``'s zero padding holds).

    One tensor per block; with a linear path, its past inputs [B, F, max(P, Q) - 1];
    with level features, last, their past raw values [B, L, W - 1].
    """
    check_streamable(model)
    c = model.net.input.out_channels
    state = [torch.zeros(batch, c, w, dtype=dtype, device=device) for w in state_widths(model)]
    if model.net.linear is not None:
        f = model.net.linear.point.conv.in_channels
        state.append(torch.zeros(batch, f, linear_width(model), dtype=dtype, device=device))
    if model.net.inputs.width:
        state.append(torch.zeros(batch, len(model.net.inputs.levels), model.net.inputs.width,
                                 dtype=dtype, device=device))
    return tuple(state)


def _conv_inputs(model: ForecastModule, x: torch.Tensor, state: State
                 ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
    """x [B, n, F] -> (the convolutions' inputs [B, Fc, n], the target's spread [B, 1, n]
    or None, the level state after x as a one-item list, or [] without level features)."""
    inputs = model.net.inputs
    xc, spread, past = inputs.advance(x, state[-1] if inputs.width else None)
    return xc, spread, [past] if inputs.width else []


def _linear_valid(lin: nn.Module, buf: torch.Tensor, n: int) -> torch.Tensor:
    """The linear path's last n outputs from its inputs buf [B, F, >= max(P, Q) - 1 + n]."""
    lag = lin.lag.conv(buf[:, :1, buf.shape[-1] - (lin.lags - 1 + n):])
    return lag + lin.point.conv(buf[..., buf.shape[-1] - (lin.feature_lags - 1 + n):])


def _outputs(model: ForecastModule, out: torch.Tensor, lin: torch.Tensor | None,
             x: torch.Tensor, quantiles: bool, spread: torch.Tensor | None = None
             ) -> torch.Tensor:
    """Head output [B, K*H*Q, n], linear path [B, H, n] or None, inputs [B, n, F], the
    target's spread [B, 1, n] or None -> forecasts [B, n, H] (``quantiles``: [B, n, H, Q]
    of a quantile net)."""
    net = model.net
    out = scaled(net.combine(out), spread)  # [B, H, n] or [B, Q, H, n]
    if net.quantiles is not None:
        out = out.permute(0, 3, 2, 1)  # [B, n, H, Q]
        if lin is not None:
            out = out + lin.transpose(1, 2)[..., None]
        out = out + x[..., :1, None]
        return out if quantiles else out[..., net.median]
    if lin is not None:
        out = out + lin
    return out.transpose(1, 2) + x[..., :1]


def _step_one(model: ForecastModule, x: torch.Tensor, state: State,
              quantiles: bool = False) -> tuple[torch.Tensor, State]:
    """:func:`advance` for one new step, x [B, 1, F], by matrix products at one position."""
    net = model.net
    b = x.shape[0]
    xc, spread, level = _conv_inputs(model, x, state)
    h = at_one(net.input, xc)  # [B, K*C]
    skips = 0
    new = []
    for block, d, past in zip(net.blocks, net.dilations, state[:len(net.blocks)], strict=True):
        buf = torch.cat([past, h[..., None]], dim=-1)  # [B, K*C, w + 1]
        new.append(buf[..., 1:])
        inner, k = block.conv.conv, block.kernel_size
        w = inner.weight if block.conv.impl == "pad" else block.conv.kernel()[..., :k]
        y = at_one(inner, buf[..., ::d], w)  # k taps d apart -> [B, K*2C]
        filt, gate = y.view(b, block.members, -1).chunk(2, dim=2)  # [B, K, C] each
        g = block.dropout((torch.tanh(filt) * torch.sigmoid(gate)).reshape(b, -1))  # [B, K*C]
        h = h + at_one(block.residual, g[..., None])
        skips = skips + at_one(block.skip, g[..., None])
    out = skips
    for layer in net.head:
        out = at_one(layer, out[..., None]) if isinstance(layer, nn.Conv1d) else layer(out)
    linear = None
    if net.linear is not None:
        lin = net.linear
        buf = torch.cat([state[len(net.blocks)], x.transpose(1, 2)], dim=-1)  # [B, F, w + 1]
        new.append(buf[..., 1:])
        linear = lin.last(buf.transpose(1, 2))[..., None]  # [B, H, 1]
    new += level
    if net.quantiles is None:  # the point net's own sums, in their order
        out = out.view(b, net.members, net.horizon).mean(dim=1)  # [B, H]
        out = scaled(out[..., None], spread)[..., 0]
        if linear is not None:
            out = out + linear[..., 0]
        return (out + x[:, 0, :1])[:, None], tuple(new)  # [B, 1, H]
    return _outputs(model, out[..., None], linear, x, quantiles, spread), tuple(new)


def advance(model: ForecastModule, x: torch.Tensor, state: State,
            quantiles: bool = False) -> tuple[torch.Tensor, State]:
    """Feed n new steps: x [B, n, F] -> (forecasts [B, n, H], state after the n steps).

    ``quantiles=True`` with a quantile net: forecasts [B, n, H, Q].
    """
    net = model.net
    n = x.shape[1]
    if n == 0:
        q = (net.n_out,) if quantiles and net.quantiles is not None else ()
        return x.new_zeros(x.shape[0], 0, net.horizon, *q), state
    if n == 1:
        return _step_one(model, x, state, quantiles)
    xc, spread, level = _conv_inputs(model, x, state)
    h = net.input(xc)  # [B, Fc, n] -> [B, K*C, n]
    skips = 0
    new = []
    blocks = state[:len(net.blocks)]
    for block, d, past in zip(net.blocks, net.dilations, blocks, strict=True):
        buf = torch.cat([past, h], dim=-1)  # [B, K*C, w + n]
        new.append(buf[..., buf.shape[-1] - past.shape[-1]:])
        h, g = block.valid(buf, d)  # [B, K*C, n] each
        skips = skips + block.skip(g)
    linear = None
    if net.linear is not None:
        past = state[len(net.blocks)]
        buf = torch.cat([past, x.transpose(1, 2)], dim=-1)  # [B, F, w + n]
        linear = _linear_valid(net.linear, buf, n)  # [B, H, n]
        new.append(buf[..., buf.shape[-1] - past.shape[-1]:])
    new += level
    return _outputs(model, net.head(skips), linear, x, quantiles, spread), tuple(new)


def step(model: ForecastModule, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    """One new step of every series: x_t [B, F] -> (forecast [B, H], state)."""
    out, state = advance(model, x_t[:, None], state)
    return out[:, 0], state


def init_state(model: ForecastModule, history: torch.Tensor) -> State:
    """The state after ``history`` [B, T, F] (T steps of each series, oldest first).

    Only the last R - 1 steps matter; fewer mean a series that started T steps ago.
    Block j computes only the ``(k - 1) * sum(d_j..)`` last positions its successors'
    states read, not all T.
    """
    check_streamable(model)
    net = model.net
    widths = state_widths(model)
    need = [sum(widths[j:]) for j in range(len(widths))]  # input positions block j needs
    b, t, _ = history.shape
    if t == 0:
        return zero_state(model, b, history.dtype, history.device)
    # the level means read W - 1 steps before the first position block 0 needs
    inputs, _ = net.inputs(history[:, max(t - need[0] - net.inputs.width, 0):])
    h = net.input(inputs[..., max(inputs.shape[-1] - need[0], 0):])  # [B, K*C, <= need[0]]
    h = F.pad(h, (need[0] - h.shape[-1], 0))  # steps before the series: zeros
    state = []
    for j, block in enumerate(net.blocks):
        state.append(h[..., need[j] - widths[j]:])
        if j + 1 < len(widths) and need[j + 1]:
            h, _ = block.valid(h, net.dilations[j])  # [B, K*C, need[j + 1]]
            if t < need[j + 1]:
                h = F.pad(h[..., need[j + 1] - t:], (need[j + 1] - t, 0))
    if net.linear is not None:  # its last max(P, Q) - 1 inputs, zeros before the series
        w = linear_width(model)
        past = history[:, max(t - w, 0):].transpose(1, 2) if w else history[:, :0].transpose(1, 2)
        state.append(F.pad(past, (w - past.shape[-1], 0)))
    if net.inputs.width:  # the level features' last W - 1 raw values, zeros before
        w = net.inputs.width
        past = history[:, max(t - w, 0):, net.inputs.levels].transpose(1, 2)
        state.append(F.pad(past, (w - past.shape[-1], 0)))
    return tuple(state)


class StreamStep(nn.Module):
    """:func:`step` as a module, for export: (x_t [B, F], *state) -> (forecast [B, H], *state);
    a quantile net's: (forecast [B, H], quantiles [B, H, Q], *state)."""

    def __init__(self, model: ForecastModule) -> None:
        super().__init__()
        check_streamable(model)
        self.model = model

    def forward(self, x_t: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        net = self.model.net
        if net.quantiles is None:
            out, new = step(self.model, x_t, tuple(state))
            return (out, *new)
        q, new = advance(self.model, x_t[:, None], tuple(state), quantiles=True)
        return (q[:, 0, :, net.median], q[:, 0], *new)
