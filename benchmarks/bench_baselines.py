"""Fit time and validation score of each configured baseline on the embedded NYC data.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_baselines.py [--threads 2]

Fits every baseline of ``configs/baselines/default.yaml`` on the training origins of
the default data config and scores it honestly on the validation split (never the
test split), all on the same origins (those with the default net's 254 steps of
history). Prints the fit seconds and the honest MAE per series and overall.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import train  # noqa: E402, F401  (registers the ${project_root:} resolver)
from forecast.baselines import Persistence  # noqa: E402
from forecast.evaluation import collect, station_scores  # noqa: E402

HISTORY = 254  # the default net's R - 1: the origins every model and baseline share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="select")
        data = compose(config_name="train").data
    dm = instantiate(data, _convert_="all")
    spec = dm.load()
    val = dm.split_origins("val", HISTORY)
    ref = collect(dm.arrays, val, Persistence(dm.horizon).predict(dm.arrays, val), spec)
    print(f"{'baseline':<18} {'fit s':>7}  honest validation MAE per series and overall")
    for name, node in cfg.baselines.items():
        model = instantiate(node, horizon=dm.horizon, _convert_="all")
        with threadpool_limits(args.threads):
            started = time.perf_counter()
            model.fit(dm.arrays, dm.split_origins("train", model.history))
            seconds = time.perf_counter() - started
        scores = station_scores(collect(dm.arrays, val, model.predict(dm.arrays, val), spec), ref)
        cells = "  ".join(f"{k} {v['mae']:.3f}" for k, v in scores.items())
        print(f"{name:<18} {seconds:7.1f}  {cells}", flush=True)


if __name__ == "__main__":
    main()
