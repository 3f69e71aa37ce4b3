"""LightningModule around the WaveNet: loss, optimiser, metrics; safe checkpoint loading."""

from __future__ import annotations

import inspect
import logging
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import lightning as L
import torch

from forecast.models import WaveNet, doubling_dilations, receptive_field

log = logging.getLogger(__name__)


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


class ForecastModule(L.LightningModule):
    """Dense forecaster: every position i of a window forecasts targets i+1 .. i+H.

    The net predicts the change from the last observed (scaled) target, which
    ``forward`` adds back. Hyperparameters are plain values only, so the
    checkpoint loads with ``torch.load(weights_only=True)``.
    """

    def __init__(
        self,
        n_features: int,
        horizon: int = 24,
        causal: bool = True,
        channels: int = 32,
        skip_channels: int = 64,
        kernel_size: int = 3,
        dilations: list[int] | None = None,
        dropout: float = 0.0,
        members: int = 1,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        data_spec: dict | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        dilations = [int(d) for d in dilations] if dilations is not None else doubling_dilations(7)
        self.save_hyperparameters({
            "n_features": int(n_features), "horizon": int(horizon), "causal": bool(causal),
            "channels": int(channels), "skip_channels": int(skip_channels),
            "kernel_size": int(kernel_size), "dilations": dilations, "dropout": float(dropout),
            "members": int(members),
            "lr": float(lr), "weight_decay": float(weight_decay), "data_spec": plain(data_spec),
            "name": name or ("causal" if causal else "standard"),
            "receptive_field": receptive_field(kernel_size, dilations),
        })
        self.net = WaveNet(n_features, horizon, channels, skip_channels, kernel_size, dilations,
                           causal, dropout, members)
        self.target_scale = float(data_spec["std"][0]) if data_spec else 1.0

    @property
    def receptive_field(self) -> int:
        return self.net.receptive_field

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled features (B, T, n_features) -> scaled forecasts (B, T, H)."""
        return self.net(x) + x[..., :1]  # feature 0 is the scaled target at step i

    def forecast_last(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x)[:, -1]`` by the causal fast path: (B, T, n_features) -> (B, H)."""
        return self.net.forward_last(x) + x[:, -1, :1]

    def _loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y, mask = batch
        err = (self(x) - y).abs()[mask]
        return err.mean(), mask.sum()

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        loss, n = self._loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite training loss ({loss.item()}) at step {self.global_step}; "
                f"lower model.lr (now {self.hparams.lr}) or check the input data"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=int(n))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        loss, n = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=int(n))
        self.log("val/mae", loss * self.target_scale, prog_bar=True, batch_size=int(n))

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        loss, n = self._loss(batch)
        self.log("test/mae", loss * self.target_scale, batch_size=int(n))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr,
                                 weight_decay=self.hparams.weight_decay)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # the module's own RNG state, so a resumed run draws the same numbers
        checkpoint["torch_rng_state"] = torch.get_rng_state()


# constructor arguments; other stored hyperparameters (receptive_field) are derived
_BUILD_KEYS = tuple(inspect.signature(ForecastModule.__init__).parameters)[1:]


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> ForecastModule:
    """The trained module in eval mode, from a checkpoint path alone (no pickled objects)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: refused: the file holds objects that loading would have to execute "
            f"or is not a checkpoint ({first})"
        ) from None
    except Exception as err:  # torch's safe loader raises many kinds on foreign files
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(err).__name__}: {first})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path}: not a forecast checkpoint (no state_dict/hyper_parameters)")
    hp = ckpt["hyper_parameters"]
    missing = [k for k in ("n_features", "causal", "dilations") if k not in hp]
    if missing:
        raise CheckpointError(f"{path}: not a forecast checkpoint (hyperparameters lack {missing})")
    module = ForecastModule(**{k: hp[k] for k in _BUILD_KEYS if k in hp})
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the stored hyperparameters "
                              f"({str(err).splitlines()[0]})") from None
    return module.eval()
