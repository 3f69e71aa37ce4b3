"""Checkpoint files that are whole or absent, and never hold non-finite weights.

Lightning's own writer stages a checkpoint through fsspec's transaction, which writes a
temporary file in ``$TMPDIR`` and moves it into place: across filesystems that move is a
copy, and a full disk during the copy leaves a truncated ``last.ckpt`` where a good one
was. :class:`AtomicCheckpointIO` writes beside the target and renames (``forecast.files``),
so a failed or killed write leaves the previous checkpoint as it was. It also refuses to
write weights that are NaN or infinite, and loads weights-only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from forecast.files import atomic_open

log = logging.getLogger(__name__)

# the checkpoint entries that hold weights: the model's, and (with EMA) the raw ones
WEIGHT_KEYS = ("state_dict", "current_model_state")


def nonfinite_weights(checkpoint: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point weights in ``checkpoint`` that hold a NaN or an infinity."""
    bad = []
    for key in WEIGHT_KEYS:
        for name, value in (checkpoint.get(key) or {}).items():
            if (isinstance(value, torch.Tensor) and value.is_floating_point()
                    and not bool(torch.isfinite(value).all())):
                bad.append(f"{key}.{name}" if key != "state_dict" else name)
    return bad


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to ``.<name>.cf-tmp-<pid>`` in the same folder, fsync, then rename."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        bad = nonfinite_weights(checkpoint)
        if bad:
            raise FloatingPointError(
                f"non-finite weights ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}) "
                f"at step {checkpoint.get('global_step')}: {path} not written, the previous "
                "checkpoint is kept; lower model.lr or check the input data")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_open(path, "wb") as f:
                torch.save(checkpoint, f)
        except OSError as err:
            raise OSError(err.errno, f"could not write checkpoint {path} ({err.strerror or err}); "
                          "the previous checkpoint there is intact") from None

    def load_checkpoint(self, path: str | Path,
                        map_location: Callable | str | None = lambda storage, loc: storage,
                        weights_only: bool | None = None) -> dict[str, Any]:
        """Always weights-only: a checkpoint holds tensors and plain values, never objects."""
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)
