"""Checkpoint files that are whole or absent, and never hold non-finite weights.

Lightning's own writer stages a checkpoint through fsspec's transaction, which writes a
temporary file in ``$TMPDIR`` and moves it into place: across filesystems that move is a
copy, and a full disk during the copy leaves a truncated ``last.ckpt`` where a good one
was. :class:`AtomicCheckpointIO` writes beside the target and renames (``forecast.files``),
so a failed or killed write leaves the previous checkpoint as it was. It also refuses to
write weights that are NaN or infinite, and loads weights-only.

Reading: :func:`read_checkpoint` loads a file weights-only or refuses it in one line
(:class:`CheckpointError`), :func:`restore` puts its weights into a module, and
:func:`plain` keeps hyperparameters to values such a load accepts.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
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


def plain(value: object) -> object:
    """Nested mappings and sequences as dicts and lists of plain values (checkpoint-safe)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a plain value; a checkpoint holds only those")


class CheckpointError(ValueError):
    """A file that is not a loadable, safe forecast checkpoint."""


def read_checkpoint(path: str | Path, map_location: str = "cpu") -> dict:
    """A checkpoint file's contents, loaded weights-only (no pickled objects), or a
    one-line :class:`CheckpointError`; series and field checkpoints alike."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive since PyTorch 1.6
        raise CheckpointError(f"{path}: not a readable checkpoint (not a zip-format PyTorch "
                              "checkpoint, which torch.save writes since PyTorch 1.6)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))  # the callable or class it names
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path}: refused: the file holds objects that loading would have to execute"
            f"{what}; only checkpoints of tensors and plain values are read"
        ) from None
    except Exception as err:  # torch's safe loader raises many kinds on foreign files
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(err).__name__}: {first})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path}: not a forecast checkpoint (no state_dict/hyper_parameters)")
    return ckpt


def restore(module: L.LightningModule, ckpt: dict, path: str | Path) -> L.LightningModule:
    """``module`` with the checkpoint's weights, in eval mode."""
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the stored hyperparameters "
                              f"({str(err).splitlines()[0]})") from None
    return module.eval()
