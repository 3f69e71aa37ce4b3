"""Score net variants on the validation split only (never the test split).

    python benchmarks/net_variants.py --seeds 0,1 NAME model.linear_lags=169 ...
    python benchmarks/net_variants.py table      # every variant scored so far, as markdown

Trains one run per seed with ``train.fit`` (Hydra overrides after NAME), then scores
the best checkpoint honestly on every validation origin (a window ending at each
origin, its last position's H outputs), per series, next to persistence on the same
origins. Appends one JSON line per seed to ``--out`` and logs the mean over seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import train  # noqa: E402  (registers the ${project_root:} resolver)
from forecast.baselines import Persistence  # noqa: E402
from forecast.evaluation import collect, forecast_origins, station_scores  # noqa: E402

log = logging.getLogger("net_variants")


def score_val(overrides: list[str], seed: int, keep: str | None = None) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[  # validation scores: no refit on it
            *overrides, f"seed={seed}", "trainer.enable_progress_bar=false", "data.refit=false"])
    with tempfile.TemporaryDirectory() as tmp:
        best, dm, info = train.fit(cfg, Path(keep or tmp) / f"seed{seed}")
    origins = dm.origins["val"]
    hon = forecast_origins(best, dm.arrays, origins, dm.spec, "honest", dm.span, 256)
    pers = collect(dm.arrays, origins, Persistence(dm.horizon).predict(dm.arrays, origins),
                   dm.spec)
    scores = station_scores(hon, pers)
    return {
        "seed": seed,
        "val_honest_mae": {k: round(v["mae"], 4) for k, v in scores.items()},
        "val_h1_mae": {k: round(v["mae_by_horizon"][0], 4) for k, v in scores.items()},
        "persistence_h1": {k: round(v, 4) for k, v in
                           ((k, s["mae_by_horizon"][0])
                            for k, s in station_scores(pers, pers).items())},
        "steps": info["global_steps"], "train_seconds": info["train_seconds"],
        "best_val_loss": round(info["best_epoch_val_loss"], 5),
    }


def table(path: str) -> str:
    """Markdown: one row per variant, means over its seeds."""
    rows: dict[str, list[dict]] = {}
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        rows.setdefault(r["name"], []).append(r)
    stations = [k for k in next(iter(rows.values()))[0]["val_honest_mae"] if k != "all"]
    out = ["| variant | overrides | seeds | all | " + " | ".join(stations)
           + " | h = 1 | persistence h = 1 | steps | train s |",
           "| --- | --- | --- |" + " ---: |" * (len(stations) + 5)]
    for name, rs in rows.items():
        def m(key: str, k: str, rs: list[dict] = rs) -> str:
            return f"{np.mean([r[key][k] for r in rs]):.3f}"
        over = " ".join(o for o in rs[0]["overrides"] if "max_steps" not in o) or "(default)"
        out.append(f"| {name} | `{over}` | {','.join(str(r['seed']) for r in rs)} | "
                   + " | ".join(m("val_honest_mae", k) for k in ["all", *stations])
                   + f" | {m('val_h1_mae', 'all')} | {m('persistence_h1', 'all')} | "
                   + f"{'/'.join(str(r['steps']) for r in rs)} | "
                   + f"{'/'.join(str(round(r['train_seconds'])) for r in rs)} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "net_variants.jsonl"))
    parser.add_argument("--keep", help="folder that keeps each run (logs, checkpoints)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.name == "table":  # print the table of every variant scored so far
        print(table(args.out))  # noqa: T201 (a script's output)
        return
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    rows = []
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        start = time.perf_counter()
        scores = score_val(args.overrides, seed, args.keep)
        row = {"name": args.name, "overrides": args.overrides, **scores,
               "wall_seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        log.info("%s seed %d: %s", args.name, seed, row)
    keys = rows[0]["val_honest_mae"]
    mean = {k: round(float(np.mean([r["val_honest_mae"][k] for r in rows])), 3) for k in keys}
    log.info("%s mean over seeds %s: %s; train s %s", args.name, seeds, mean,
             [r["train_seconds"] for r in rows])


if __name__ == "__main__":
    main()
