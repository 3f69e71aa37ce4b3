"""LightningModule around the field net: loss, optimiser, metrics; safe checkpoint loading."""

from __future__ import annotations

import inspect
from pathlib import Path

import lightning as L
import torch

from forecast.fields.net import FieldNet
from forecast.models import receptive_field
from forecast.module import CheckpointError, plain, read_checkpoint, restore


class FieldModule(L.LightningModule):
    """Dense field forecaster: every step i of a window forecasts the maps at i+1 .. i+H.

    The net predicts the change from the last observed (scaled) map, which ``forward``
    adds back. Hyperparameters are plain values only (weights-only checkpoints).
    """

    def __init__(
        self,
        n_features: int,
        horizon: int = 6,
        causal: bool = True,
        channels: int = 16,
        kernel_time: int = 3,
        kernel_space: int = 3,
        dilations: list[int] | None = None,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        data_spec: dict | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        dilations = [int(d) for d in dilations] if dilations is not None else [1, 2, 4, 8]
        self.save_hyperparameters({
            "kind": "field", "n_features": int(n_features), "horizon": int(horizon),
            "causal": bool(causal), "channels": int(channels), "kernel_time": int(kernel_time),
            "kernel_space": int(kernel_space), "dilations": dilations, "lr": float(lr),
            "weight_decay": float(weight_decay), "data_spec": plain(data_spec),
            "name": name or ("causal3d" if causal else "standard3d"),
            "receptive_field": receptive_field(kernel_time, dilations),
        })
        self.net = FieldNet(n_features, horizon, channels, kernel_time, kernel_space, dilations,
                            causal)
        self.target_scale = float(data_spec["std"]) if data_spec else 1.0

    @property
    def receptive_field(self) -> int:
        return self.net.receptive_field

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled inputs (B, T, C, Y, X) -> scaled forecasts (B, T, H, Y, X)."""
        return self.net(x) + x[:, :, :1]  # channel 0 is the scaled map at step i

    def _loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
        x, y, mask = batch  # mask [B, L]: scored steps
        err = (self(x) - y).abs()[mask]  # [N, H, Y, X]
        return err.mean(), int(err.numel())

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        loss, n = self._loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite training loss ({loss.item()}) at step {self.global_step}; "
                f"lower model.lr (now {self.hparams.lr}) or check the input data"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        loss, n = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=n)
        self.log("val/mae", loss * self.target_scale, prog_bar=True, batch_size=n)

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        loss, n = self._loss(batch)
        self.log("test/mae", loss * self.target_scale, batch_size=n)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr,
                                 weight_decay=self.hparams.weight_decay)


_BUILD_KEYS = tuple(inspect.signature(FieldModule.__init__).parameters)[1:]


def is_field_checkpoint(hparams: dict) -> bool:
    return hparams.get("kind") == "field"


def load_field_checkpoint(path: str | Path, map_location: str = "cpu",
                          ckpt: dict | None = None) -> FieldModule:
    """The trained field module in eval mode, from the checkpoint alone (weights only).

    ``ckpt``: the file's contents when :func:`read_checkpoint` already read them.
    """
    ckpt = read_checkpoint(path, map_location) if ckpt is None else ckpt
    hp = ckpt["hyper_parameters"]
    if not is_field_checkpoint(hp):
        raise CheckpointError(f"{path}: not a field checkpoint (train.py data=era5_uk "
                              "model=causal3d writes one)")
    return restore(FieldModule(**{k: hp[k] for k in _BUILD_KEYS if k in hp}), ckpt, path)
