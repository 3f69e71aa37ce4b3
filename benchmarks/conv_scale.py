"""How much of the convolutions' output to keep, measured on the selection folds.

``python benchmarks/conv_scale.py SELECT_DIR [--variant default] [--scales 0,0.5,0.75,1,1.25]``

For every run of ``--variant`` in SELECT_DIR (``python selection.py``: one per fold and
seed), the convolutions' contribution to the forecast is scaled by each factor (the head's
last layer, which the output is linear in, times the factor; the linear path untouched) and
the run is scored honestly on its fold's scored block, the same origins as in the selection
table. Factor 0 is the trained linear path alone, 1 the trained net. A factor below 1 that
scores better would say the convolutions add noise that shrinking removes. Prints the MAE
per run and the mean per factor; the test split is never read (the folds end where
validation ends).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecast.baselines import Persistence  # noqa: E402
from forecast.data import ForecastDataModule  # noqa: E402
from forecast.evaluation.protocols import collect, forecast_origins, station_scores  # noqa: E402
from forecast.features import DataSpec, series_arrays  # noqa: E402
from forecast.module import load_checkpoint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("select_dir", type=Path)
    ap.add_argument("--variant", default="default")
    ap.add_argument("--scales", default="0,0.5,0.75,1,1.25")
    args = ap.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    runs = sorted(args.select_dir.glob(f"runs/fold*/{args.variant}_seed*"))
    if not runs:
        sys.exit(f"{args.select_dir}: no runs/fold*/{args.variant}_seed* folders")
    table: dict[float, list[float]] = {s: [] for s in scales}
    for run in runs:
        data = dict(yaml.safe_load((run / "config.yaml").read_text())["data"])
        data.pop("_target_")
        dm = ForecastDataModule(**data)
        dm.load()
        model = load_checkpoint(str(run / "checkpoints" / "best.ckpt"))
        history = max(model.receptive_field - 1, 168)  # the selection's baselines read 168
        origins = dm.split_origins("test", history)  # the fold's scored block
        reference = collect(dm.arrays, origins,
                            Persistence(dm.horizon).predict(dm.arrays, origins), dm.spec)
        own = DataSpec.from_dict(model.hparams.data_spec)
        arrays = series_arrays(dm.frame, own)
        last = model.net.head[-1]
        weight, bias = last.weight.detach().clone(), last.bias.detach().clone()
        scores = []
        for s in scales:
            with torch.no_grad():
                last.weight.copy_(weight * s)
                last.bias.copy_(bias * s)
            fc = forecast_origins(model, arrays, origins, own, "honest", dm.span)
            scores.append(station_scores(fc, reference)["all"]["mae"])
            table[s].append(scores[-1])
        print(f"{run.parent.name}/{run.name}: " + ", ".join(
            f"x{s:g} {m:.3f}" for s, m in zip(scales, scores, strict=True)), flush=True)
    print("mean over runs: " + ", ".join(f"x{s:g} {np.mean(v):.3f}" for s, v in table.items()))


if __name__ == "__main__":
    main()
