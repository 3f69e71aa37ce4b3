"""Standard ("same") and causal convolutions in 1, 2 and 3 dimensions.

Every layer here reads a fixed set of kernel offsets around the output position,
its *footprint*, written as a union of boxes: per axis ``(first offset, taps)``
in units of that axis' dilation. Causality is nothing but where the boxes sit:

- ``SameConvNd``: one centred box, ``(-(k // 2), k)`` on every axis.
- causal along time (``CausalConv1d``, ``CausalConv3d(order="time")``): time reads
  ``k`` taps ending at the present, ``(-(k - 1), k)``; space stays centred.
- raster order (``CausalConv2d``, ``CausalConv3d(order="raster")``): earlier frames
  in full (box ``before``), the rows above in full (box ``above``), and the current
  row left of the pixel (box ``conv``), the pixel itself included for mask "B" and
  excluded for mask "A" (the first layer of an autoregressive stack).

``impl="pad"`` (the default) runs each box as explicit padding then an unpadded
convolution, and sums the boxes. The padding tuple of a box *is* its causality:
a 1-D causal box pads ``((k - 1) * d, 0)``, a centred one ``((k - 1) * d / 2,
(k - 1) * d / 2)``; a negative entry (``-d``) drops the last input step, which no
output is allowed to read. ``impl="mask"`` runs one centred convolution whose
kernel covers all boxes, multiplied at every call by a registered 0/1 mask: the
weights are never mutated, masked taps get zero gradient, and it costs more
FLOPs (a causal time axis needs a ``2k - 1`` kernel). Both give the same outputs
for the same effective kernel (``kernel()``), and each loads the other's
single-box state dict.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Box = tuple[tuple[int, int], ...]  # per axis (first offset, taps), offsets in dilation units

_CONV = {1: (nn.Conv1d, F.conv1d), 2: (nn.Conv2d, F.conv2d), 3: (nn.Conv3d, F.conv3d)}


def _per_axis(value: int | tuple[int, ...], n: int, name: str) -> tuple[int, ...]:
    out = (value,) * n if isinstance(value, int) else tuple(value)
    if len(out) != n or min(out) < 1:
        raise ValueError(f"{name}={value}: expected a positive int or {n} positive ints")
    return out


def centred(k: int, axis: str = "this") -> tuple[int, int]:
    """Box of k taps centred on the output: offsets -(k // 2) .. k // 2."""
    if k % 2 == 0:
        raise ValueError(f"kernel_size={k} on {axis} axis: centred padding needs an even span "
                         "(k - 1) * d; use an odd kernel_size")
    return (-(k // 2), k)


def past(k: int, mask: str) -> tuple[int, int]:
    """Box of k taps ending at the present (mask "B") or just before it (mask "A")."""
    if mask not in ("A", "B"):
        raise ValueError(f"mask={mask!r}: expected 'A' (excludes the present) or 'B' (includes it)")
    return (-(k - 1), k) if mask == "B" else (-k, k)


def raster_boxes(kernel: tuple[int, ...], mask: str) -> dict[str, Box]:
    """Raster-order footprint over (..., rows, cols) with a causal first axis when 3-D."""
    past(1, mask)  # validates mask
    *lead, kh, kw = kernel
    rh, rw = centred(kh, "the rows")[0], centred(kw, "the columns")[0]
    if mask == "A" and kw == 1:
        raise ValueError("mask='A' with kernel width 1 reads nothing in the current row; "
                         "use kernel_size >= 3")
    boxes: dict[str, Box] = {}
    now = ((0, 1),) * len(lead)
    boxes["conv"] = (*now, (0, 1), (rw, -rw + (1 if mask == "B" else 0)))
    if kh > 1:
        boxes["above"] = (*now, (rh, -rh), (rw, kw))
    if lead and lead[0] > 1:
        boxes["before"] = ((-(lead[0] - 1), lead[0] - 1), (rh, kh), (rw, kw))
    return boxes


class BoxConv(nn.Module):
    """Convolution reading a union of boxes of offsets: (B, C_in, *S) -> (B, C_out, *S').

    Shape-preserving (S' = S) except for ``stride`` along the first (time) axis,
    where S'[0] = ceil(S[0] / stride) and output n sits at input step n * stride.
    """

    def __init__(
        self, in_channels: int, out_channels: int, boxes: dict[str, Box],
        dilation: int | tuple[int, ...] = 1, stride: int = 1, groups: int = 1,
        bias: bool = True, impl: str = "pad",
    ) -> None:
        super().__init__()
        ndim = len(next(iter(boxes.values())))
        module, self._conv_fn = _CONV[ndim]
        self.boxes = boxes
        self.impl = impl
        self.dilation = _per_axis(dilation, ndim, "dilation")
        strides = (stride,) + (1,) * (ndim - 1)
        # half-width of the centred kernel that covers every box, per axis
        self.half = tuple(max(max(-f, f + n - 1) for f, n in (b[a] for b in boxes.values()))
                          for a in range(ndim))
        if impl == "pad":
            self.paddings = {name: self._padding(box) for name, box in boxes.items()}
            for name, box in boxes.items():
                conv = module(in_channels, out_channels, tuple(n for _, n in box), strides,
                              dilation=self.dilation, groups=groups, bias=bias and name == "conv")
                self.add_module(name, conv)
        elif impl == "mask":
            full = tuple(2 * h + 1 for h in self.half)
            self.paddings = {"conv": self._padding(tuple((-h, 2 * h + 1) for h in self.half))}
            self.conv = module(in_channels, out_channels, full, strides, dilation=self.dilation,
                               groups=groups, bias=bias)
            self.register_buffer("mask", self.footprint().to(self.conv.weight.dtype),
                                 persistent=False)
        else:
            raise ValueError(f"impl={impl!r}: expected 'pad' or 'mask'")

    def _padding(self, box: Box) -> tuple[int, ...]:
        """F.pad tuple (last axis first): box (f, n) reads x[i + f*d .. i + (f + n - 1)*d]."""
        pads: list[int] = []
        for (f, n), d in zip(reversed(box), reversed(self.dilation), strict=True):
            pads += [-f * d, (f + n - 1) * d]
        return tuple(pads)

    @property
    def padding(self) -> tuple[int, ...]:
        """The padding tuple of the box holding the present (the whole story in 1-D)."""
        return self.paddings["conv"]

    def _slices(self, box: Box) -> tuple[slice, ...]:
        return (..., *(slice(f + h, f + h + n) for (f, n), h in zip(box, self.half, strict=True)))

    def footprint(self) -> torch.Tensor:
        """0/1 tensor over the covering centred kernel: 1 where some box reads."""
        mask = torch.zeros(tuple(2 * h + 1 for h in self.half))
        for box in self.boxes.values():
            mask[self._slices(box)] = 1.0
        return mask

    def kernel(self) -> torch.Tensor:
        """Effective centred kernel (C_out, C_in / groups, *(2 * half + 1)) of this layer."""
        if self.impl == "mask":
            return self.conv.weight * self.mask
        w = self.conv.weight
        full = w.new_zeros(*w.shape[:2], *(2 * h + 1 for h in self.half))
        for name, box in self.boxes.items():
            full[self._slices(box)] = getattr(self, name).weight
        return full

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = None
        for name, pad in self.paddings.items():
            conv = getattr(self, name)
            w = conv.weight * self.mask if self.impl == "mask" else conv.weight
            y = self._conv_fn(F.pad(x, pad), w, conv.bias, conv.stride, 0, conv.dilation,
                              conv.groups)
            out = y if out is None else out + y
        return out

    @property
    def reach(self) -> tuple[tuple[int, int], ...]:
        """Per axis, the first and last input offset any output reads, in grid steps.

        ``CausalConv3d(c, c, 3, dilation=(4, 1, 1)).reach == ((-8, 0), (-1, 1), (-1, 1))``.
        """
        taps = self.footprint().nonzero()
        return tuple(((int(taps[:, a].min()) - h) * d, (int(taps[:, a].max()) - h) * d)
                     for a, (h, d) in enumerate(zip(self.half, self.dilation, strict=True)))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Accept the other impl's layout of a single-box kernel (pad <-> mask)."""
        key, w = prefix + "conv.weight", state_dict.get(prefix + "conv.weight")
        if w is not None and len(self.boxes) == 1 and w.shape != self.conv.weight.shape:
            box = next(iter(self.boxes.values()))
            sl = self._slices(box)
            if self.impl == "mask" and tuple(w.shape[2:]) == tuple(n for _, n in box):
                full = w.new_zeros(self.conv.weight.shape)
                full[sl] = w
                state_dict[key] = full
            elif self.impl == "pad" and tuple(w.shape[2:]) == tuple(2 * h + 1 for h in self.half):
                state_dict[key] = w[sl]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"impl={self.impl}, paddings={self.paddings}"


class SameConv1d(BoxConv):
    """Centred ("same") 1-D conv over (B, C, T): output t reads t - (k-1)d/2 .. t + (k-1)d/2."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, {"conv": (centred(kernel_size, "the time"),)},
                         dilation, stride, groups, bias)


class CausalConv1d(BoxConv):
    """Causal 1-D conv over (B, C, T): output t reads t - (k-1)d .. t (mask "B")."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True, mask: str = "B",
                 impl: str = "pad") -> None:
        super().__init__(in_channels, out_channels, {"conv": (past(kernel_size, mask),)},
                         dilation, stride, groups, bias, impl)


class SameConv2d(BoxConv):
    """Centred 2-D conv over (B, C, H, W), shape-preserving; odd kernel sizes."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True) -> None:
        kh, kw = _per_axis(kernel_size, 2, "kernel_size")
        super().__init__(in_channels, out_channels,
                         {"conv": (centred(kh, "the rows"), centred(kw, "the columns"))},
                         dilation, 1, groups, bias)


class CausalConv2d(BoxConv):
    """Raster-order 2-D conv over (B, C, H, W): rows above, then columns to the left.

    Mask "A" (first layer of a stack) excludes the pixel itself; mask "B" includes it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
                 mask: str = "B", impl: str = "pad") -> None:
        boxes = raster_boxes(_per_axis(kernel_size, 2, "kernel_size"), mask)
        super().__init__(in_channels, out_channels, boxes, dilation, 1, groups, bias, impl)


class SameConv3d(BoxConv):
    """Centred 3-D conv over (B, C, T, H, W); ``stride`` applies to time only."""

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, int, int], stride: int = 1,
                 dilation: int | tuple[int, int, int] = 1, groups: int = 1,
                 bias: bool = True) -> None:
        kt, kh, kw = _per_axis(kernel_size, 3, "kernel_size")
        box = (centred(kt, "the time"), centred(kh, "the rows"), centred(kw, "the columns"))
        super().__init__(in_channels, out_channels, {"conv": box}, dilation, stride, groups, bias)


class CausalConv3d(BoxConv):
    """Causal 3-D conv over (B, C, T, H, W).

    ``order="time"`` (weather fields, video): output (t, i, j) reads frames
    t - (kt-1)d_t .. t, space centred; ``dilation=(d, 1, 1)`` dilates time only and
    ``stride`` subsamples time. ``order="raster"``: earlier frames, then rows above,
    then columns to the left, as a masked k x k x k kernel would (mask "A"/"B" as in 2-D).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, int, int], stride: int = 1,
                 dilation: int | tuple[int, int, int] = 1, groups: int = 1, bias: bool = True,
                 order: str = "time", mask: str = "B", impl: str = "pad") -> None:
        kt, kh, kw = kernel = _per_axis(kernel_size, 3, "kernel_size")
        if order == "time":
            box = (past(kt, mask), centred(kh, "the rows"), centred(kw, "the columns"))
            boxes = {"conv": box}
        elif order == "raster":
            boxes = raster_boxes(kernel, mask)
        else:
            raise ValueError(f"order={order!r}: expected 'time' or 'raster'")
        super().__init__(in_channels, out_channels, boxes, dilation, stride, groups, bias, impl)
        self.order = order


def conv1d(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
           causal: bool = True, groups: int = 1, impl: str = "pad") -> BoxConv:
    """The one flag of the 1-D models: causal (left padding) or centred ("same") padding."""
    if causal:
        return CausalConv1d(in_channels, out_channels, kernel_size, dilation=dilation,
                            groups=groups, impl=impl)
    return SameConv1d(in_channels, out_channels, kernel_size, dilation=dilation, groups=groups)
