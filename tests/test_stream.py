"""Streaming equals the full recompute: state in, state out, over any chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecast.module import ForecastModule
from forecast.stream import (
    StreamStep,
    advance,
    init_state,
    state_widths,
    step,
    zero_state,
)


def module(dilations: list[int], kernel: int = 3, members: int = 2, causal: bool = True,
           dtype: torch.dtype = torch.float64) -> ForecastModule:
    torch.manual_seed(0)
    m = ForecastModule(n_features=3, horizon=4, channels=4, skip_channels=4, kernel_size=kernel,
                       dilations=dilations, members=members, causal=causal)
    return m.to(dtype).eval()


def chunk_sizes(rng: np.random.Generator, total: int) -> list[int]:
    """Random chunks, a third of them single steps, summing to ``total``."""
    sizes = []
    while sum(sizes) < total:
        sizes.append(1 if rng.random() < 1 / 3 else int(rng.integers(2, 200)))
    sizes[-1] -= sum(sizes) - total
    return [s for s in sizes if s > 0]


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_ten_thousand_streamed_steps_equal_the_full_recompute(dtype, tol):
    model = module([1, 2, 4, 8, 16], dtype=dtype)  # R = 63
    rng = np.random.default_rng(0)
    n, warm = 10_000, 100
    x = torch.from_numpy(rng.normal(size=(3, n, 3))).to(dtype)  # three series at once
    with torch.no_grad():
        full = model(x)  # [3, n, H]
        state = init_state(model, x[:, :warm])
        got, t = [], warm
        for size in chunk_sizes(rng, n - warm):
            out, state = advance(model, x[:, t : t + size], state)
            got.append(out)
            t += size
    got = torch.cat(got, dim=1)
    assert got.shape == (3, n - warm, 4)
    assert (got - full[:, warm:]).abs().max().item() < tol


@pytest.mark.parametrize(("dilations", "kernel", "members"),
                         [([1, 2, 4, 8], 3, 1), ([3, 6, 2, 9], 2, 3), ([4, 8, 12], 3, 2)])
def test_step_from_a_zero_state_equals_forward_at_every_step(dilations, kernel, members):
    model = module(dilations, kernel, members)
    x = torch.randn(2, 70, 3, dtype=torch.float64)
    with torch.no_grad():
        full = model(x)
        state = zero_state(model, 2, torch.float64)
        outs = []
        for t in range(70):
            out, state = step(model, x[:, t], state)
            outs.append(out)
    torch.testing.assert_close(torch.stack(outs, dim=1), full, rtol=0, atol=1e-12)
    # the state holds exactly (k - 1) * d past activations per block
    assert [s.shape[-1] for s in state] == [(kernel - 1) * d for d in dilations]


@pytest.mark.parametrize("t", [0, 5, 20, 46, 47, 90])
def test_init_state_equals_stepping_through_the_history(t):
    model = module([1, 2, 4, 8, 8], members=2)  # R = 47
    x = torch.randn(3, t, 3, dtype=torch.float64)
    with torch.no_grad():
        _, stepped = advance(model, x, zero_state(model, 3, torch.float64))
        warmed = init_state(model, x)
    for a, b in zip(warmed, stepped, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_series_in_one_batch_do_not_interact():
    model = module([1, 2, 4])
    x = torch.randn(4, 30, 3, dtype=torch.float64)
    with torch.no_grad():
        both, _ = advance(model, x, init_state(model, x[:, :0]))
        one, _ = advance(model, x[2:3], zero_state(model, 1, torch.float64))
    torch.testing.assert_close(both[2:3], one, rtol=0, atol=1e-12)


def test_non_causal_checkpoint_is_refused():
    model = module([1, 2, 4], causal=False)
    with pytest.raises(ValueError, match="is not causal: its forecast at step t reads 7 steps"):
        zero_state(model, 1)
    with pytest.raises(ValueError, match="is not causal"):
        init_state(model, torch.zeros(1, 20, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="is not causal"):
        StreamStep(model)


def test_stream_step_module_matches_step():
    model = module([1, 2], members=1, dtype=torch.float32)
    state = tuple(torch.randn(2, 4, w) for w in state_widths(model))
    x_t = torch.randn(2, 3)
    with torch.no_grad():
        out, new = step(model, x_t, state)
        got = StreamStep(model)(x_t, *state)
    torch.testing.assert_close(got[0], out)
    for a, b in zip(got[1:], new, strict=True):
        torch.testing.assert_close(a, b)
