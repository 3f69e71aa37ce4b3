"""LightningModule around the WaveNet: loss, optimiser, metrics; safe checkpoint loading."""

from __future__ import annotations

import inspect
import logging
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch

from forecast.checkpoint_io import CheckpointError, plain, read_checkpoint, restore
from forecast.features import DataSpec, SeriesArrays
from forecast.linear import (
    fit_linear_path,
    horizon_weighting,
    inverse_error_weights,
    path_residuals,
)
from forecast.models import WaveNet, doubling_dilations
from forecast.quantiles import check_levels, inverse_softplus, pinball_loss

log = logging.getLogger(__name__)


def _feature_names(data_spec: dict | None) -> list[str]:
    return DataSpec.from_dict(data_spec).feature_names if data_spec else []


def _level_scale(scale: float, quantiles: list[float] | None, target_is_level: bool,
                 window: int) -> float:
    """The level scale the net gets: ``scale``, or 0 where it does not apply: a quantile net
    (its head starts at the ridge fit's residual quantiles, in the target's units), or a
    target that is not a level feature present. Logged at INFO, not refused: the default
    config meets both cases on other files."""
    if scale and quantiles is not None:
        log.info("model.level_scale=%g is not applied to a quantile net (its head starts "
                 "in the target's units); it reads the level departures unscaled", scale)
        return 0.0
    if scale and (not target_is_level or window <= 1):
        log.info("model.level_scale=%g is not applied: the target is not among the level "
                 "features present (model.level_features, model.level_window > 1)", scale)
        return 0.0
    return scale


class ForecastModule(L.LightningModule):
    """Dense forecaster: every position i of a window forecasts targets i+1 .. i+H.

    The net predicts the change from the last observed (scaled) target, which
    ``forward`` adds back. Hyperparameters are plain values only, so the
    checkpoint loads with ``torch.load(weights_only=True)``.

    ``quantiles`` (levels holding 0.5): the net also forecasts those quantiles
    (:meth:`forward_quantiles`) and trains on the pinball loss; ``forward`` stays the
    point forecast, the median. ``None``: the point net trained on the L1 loss.
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
        linear_lags: int = 0,
        feature_lags: int = 1,
        linear_alpha: float = 1.0,
        linear_only: list[str] | None = None,
        linear_lr: float = 1.0,
        warmup_steps: int = 0,
        cosine: bool = False,
        impl: str = "pad",
        quantiles: list[float] | None = None,
        level_window: int = 0,
        level_features: list[str] | None = None,
        level_scale: float = 0.0,
        horizon_weights: str = "uniform",
        data_spec: dict | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        dilations = [int(d) for d in dilations] if dilations is not None else doubling_dilations(7)
        linear_only = [str(n) for n in linear_only or []]
        names = _feature_names(data_spec)
        only = [names.index(n) for n in linear_only if n in names]
        level_features = [str(n) for n in level_features or []]
        level = [names.index(n) for n in level_features if n in names]
        quantiles = check_levels(quantiles) if quantiles is not None else None
        level_scale = _level_scale(float(level_scale), quantiles, 0 in level, level_window)
        horizon_weights = horizon_weighting(str(horizon_weights), quantiles, linear_lags)
        self.net = WaveNet(n_features, horizon, channels, skip_channels, kernel_size, dilations,
                           causal, dropout, members, linear_lags, only, feature_lags, impl,
                           quantiles, level_window, level, level_scale)
        self.save_hyperparameters({
            "n_features": int(n_features), "horizon": int(horizon), "causal": bool(causal),
            "channels": int(channels), "skip_channels": int(skip_channels),
            "kernel_size": int(kernel_size), "dilations": dilations, "dropout": float(dropout),
            "members": int(members),
            "lr": float(lr), "weight_decay": float(weight_decay),
            "linear_lags": int(linear_lags), "feature_lags": int(feature_lags),
            "linear_alpha": float(linear_alpha),
            "linear_only": linear_only, "linear_lr": float(linear_lr),
            "warmup_steps": int(warmup_steps), "cosine": bool(cosine), "impl": str(impl),
            "quantiles": quantiles,
            "level_window": int(level_window), "level_features": level_features,
            "level_scale": float(level_scale),
            "horizon_weights": str(horizon_weights),
            "data_spec": plain(data_spec),
            "name": name or ("causal" if causal else "standard"),
            "receptive_field": self.net.receptive_field,
        })
        if quantiles is not None:
            self.register_buffer("levels", torch.tensor(quantiles), persistent=False)
        if horizon_weights != "uniform":  # in the state dict, so a resumed run keeps it
            self.register_buffer("horizon_weight", torch.ones(int(horizon)))
        self.target_scale = float(data_spec["std"][0]) if data_spec else 1.0

    @property
    def receptive_field(self) -> int:
        return self.net.receptive_field

    def fit_linear(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> None:
        """Start from the ridge fit of the linear path on training origins; the
        convolutions' output starts at zero, so the untrained net is that ridge model."""
        if self.net.linear is None:
            return
        n = fit_linear_path(self.net.linear, arrays, origins, self.hparams.linear_alpha)
        with torch.no_grad():
            for p in self.net.head[-1].parameters():
                p.zero_()
        if self.net.quantiles is not None:
            self._start_quantiles(arrays, origins)
        if hasattr(self, "horizon_weight"):
            w = inverse_error_weights(path_residuals(self.net.linear, arrays, origins,
                                                     self.hparams.horizon))
            self.horizon_weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            log.info("horizon weights (inverse ridge error): h = 1: %.2f, h = %d: %.2f",
                     w[0], len(w), w[-1])
        log.info("linear path: ridge fit on %d training origins (alpha %g)", n,
                 self.hparams.linear_alpha)

    @torch.no_grad()
    def _start_quantiles(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> None:
        """Start the quantiles at the ridge fit's empirical residual quantiles per horizon
        step on training origins: the increments' biases are the gaps between them."""
        res = path_residuals(self.net.linear, arrays, origins, self.hparams.horizon)
        q = np.nanquantile(res, self.net.quantiles, axis=0)  # [Q, H]
        m = self.net.median
        raw = np.zeros_like(q)
        raw[m] = q[m]
        raw[:m] = inverse_softplus(q[1 : m + 1] - q[:m])
        raw[m + 1 :] = inverse_softplus(q[m + 1 :] - q[m:-1])
        bias = self.net.head[-1].bias  # [K*Q*H]
        bias.copy_(torch.as_tensor(raw, dtype=bias.dtype).reshape(-1).repeat(self.net.members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled features (B, T, n_features) -> scaled forecasts (B, T, H)."""
        return self.net(x) + x[..., :1]  # feature 0 is the scaled target at step i

    def forward_quantiles(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled features (B, T, n_features) -> scaled quantiles (B, T, H, Q)."""
        return self.net.forward_quantiles(x) + x[..., :1, None]

    def forecast_last(self, x: torch.Tensor, quantiles: bool = False) -> torch.Tensor:
        """``forward(x)[:, -1]`` by the causal fast path: (B, T, n_features) -> (B, H);
        ``quantiles=True``: ``forward_quantiles(x)[:, -1]``, (B, H, Q)."""
        out = self.net.forward_last(x, quantiles)
        return out + (x[:, -1, :1, None] if out.dim() == 3 else x[:, -1, :1])

    def _loss(self, batch: tuple[torch.Tensor, ...], weighted: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, MAE of the point forecast, number of scored targets); ``weighted``: the
        training loss, each step's error times its horizon weight (when there are any)."""
        x, y, mask = batch
        if self.net.quantiles is None:
            err = (self(x) - y).abs()
            mae = err[mask].mean()
            if weighted and hasattr(self, "horizon_weight"):
                return (err * self.horizon_weight)[mask].mean(), mae, mask.sum()
            return mae, mae, mask.sum()
        q = self.forward_quantiles(x)[mask]  # [N, Q]
        mae = (q[:, self.net.median] - y[mask]).abs().mean()
        return pinball_loss(q, y[mask], self.levels), mae, mask.sum()

    def _members_loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """(training loss, number of scored targets) of an ensemble: each member is scored
        on its own forecasts and the losses averaged, so the members stay independent nets
        (a loss on their mean would train them as one)."""
        x, y, mask = batch
        k = self.net.members
        out = self.net.members_forward(x)  # [B, K, T, H] or [B, K, T, H, Q]
        out = out.movedim(1, 0)[:, mask]  # [K, N] or [K, N, Q]
        last = x[..., :1].expand_as(y)[mask]  # [N]: the scaled target at the origin
        target = y[mask]
        if self.net.quantiles is None:
            err = (out + last - target).abs()  # [K, N]
            if hasattr(self, "horizon_weight"):
                err = err * self.horizon_weight.expand_as(y)[mask]
            return err.mean(), mask.sum()
        q = (out + last[:, None]).reshape(-1, out.shape[-1])  # [K*N, Q]
        return pinball_loss(q, target.repeat(k), self.levels), mask.sum()

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        if self.net.members > 1:
            loss, n = self._members_loss(batch)
        else:
            loss, _, n = self._loss(batch, weighted=True)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite training loss ({loss.item()}) at step {self.global_step}; "
                f"lower model.lr (now {self.hparams.lr}) or check the input data"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=int(n))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        loss, mae, n = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=int(n))
        self.log("val/mae", mae * self.target_scale, prog_bar=True, batch_size=int(n))

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        _, mae, n = self._loss(batch)
        self.log("test/mae", mae * self.target_scale, batch_size=int(n))

    def configure_optimizers(self) -> dict:
        hp = self.hparams
        linear = set(self.net.linear.parameters()) if self.net.linear is not None else set()
        groups = [{"params": [p for p in self.parameters() if p not in linear]}]
        if linear and hp.linear_lr > 0:  # linear_lr 0: the ridge fit stays as it is
            # in module order, not set order (ids): a resumed optimiser maps state by position
            groups.append({"params": list(self.net.linear.parameters()),
                           "lr": hp.lr * hp.linear_lr})
        for p in linear:
            p.requires_grad_(hp.linear_lr > 0)
        opt = torch.optim.AdamW(groups, lr=hp.lr, weight_decay=hp.weight_decay)
        warm, total = self.hparams.warmup_steps, None
        if self.hparams.cosine:
            total = self.trainer.estimated_stepping_batches
            if not 0 < total < math.inf:
                raise ValueError("model.cosine=true needs a finite training budget "
                                 "(trainer.max_steps)")
            total = int(total)

        def factor(step: int) -> float:
            f = min(1.0, (step + 1) / warm) if warm else 1.0
            if total:
                f *= 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
            return f
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # the module's own RNG state, so a resumed run draws the same numbers
        checkpoint["torch_rng_state"] = torch.get_rng_state()


# constructor arguments; other stored hyperparameters (receptive_field) are derived
_ARGUMENTS = inspect.signature(ForecastModule.__init__).parameters
_BUILD_KEYS = tuple(_ARGUMENTS)[1:]


def build_defaults() -> dict:
    """Each constructor argument's default: what a checkpoint written before that
    argument existed was built with."""
    return {k: p.default for k, p in _ARGUMENTS.items() if p.default is not p.empty}


def load_checkpoint(path: str | Path, map_location: str = "cpu",
                    ckpt: dict | None = None) -> ForecastModule:
    """The trained module in eval mode, from a checkpoint path alone (no pickled objects).

    ``ckpt``: the file's contents when :func:`read_checkpoint` already read them.
    """
    ckpt = read_checkpoint(path, map_location) if ckpt is None else ckpt
    hp = ckpt["hyper_parameters"]
    missing = [k for k in ("n_features", "causal", "dilations") if k not in hp]
    if missing:
        raise CheckpointError(f"{path}: not a forecast checkpoint (hyperparameters lack {missing})")
    if hp.get("data_spec") is not None:
        try:
            DataSpec.from_dict(hp["data_spec"])
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: the checkpoint's stored data spec is damaged "
                                  f"({type(err).__name__}: {err}); pass a .ckpt written by "
                                  "train.py") from None
    return restore(ForecastModule(**{k: hp[k] for k in _BUILD_KEYS if k in hp}), ckpt, path)
