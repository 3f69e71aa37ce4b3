"""The selection table: honest MAE per fold, mean and spread per candidate."""

from __future__ import annotations

import csv
import io
from collections import defaultdict

import numpy as np

from forecast.evaluation.selection import Fold, Score
from forecast.report.tables import fmt, markdown_table


def summarise(scores: list[Score]) -> dict[str, dict]:
    """Per candidate: MAE per fold (mean over seeds), mean and std across folds, the
    seed spread, per-series means, targets counted, seconds per run; best first."""
    by_name: dict[str, list[Score]] = defaultdict(list)
    for s in scores:
        by_name[s.name].append(s)
    out = {}
    for name, group in by_name.items():
        folds = sorted({s.fold for s in group})
        per_fold = {f: [s for s in group if s.fold == f] for f in folds}
        fold_mae = [float(np.mean([s.mae for s in per_fold[f]])) for f in folds]
        seed_std = [float(np.std([s.mae for s in per_fold[f]], ddof=1))
                    for f in folds if len(per_fold[f]) > 1]
        stations = sorted({k for s in group for k in s.stations})
        out[name] = {
            "kind": group[0].kind,
            "fold_mae": fold_mae,
            "mae": float(np.mean(fold_mae)),
            "fold_std": float(np.std(fold_mae, ddof=1)) if len(fold_mae) > 1 else None,
            "seed_std": float(np.mean(seed_std)) if seed_std else None,
            "seeds": sorted({s.seed for s in group if s.seed is not None}),
            "stations": {k: float(np.mean([s.stations[k] for s in group])) for k in stations},
            "n_targets": [per_fold[f][0].n_targets for f in folds],
            "seconds": float(np.mean([s.seconds for s in group])),
        }
    return dict(sorted(out.items(), key=lambda kv: kv[1]["mae"]))


def strongest_baseline(summary: dict[str, dict]) -> str | None:
    """The baseline with the lowest mean honest MAE across folds."""
    names = [n for n, e in summary.items() if e["kind"] == "baseline"]
    return min(names, key=lambda n: summary[n]["mae"]) if names else None


def selection_markdown(summary: dict[str, dict], folds: list[Fold], units: str,
                       horizon: int) -> str:
    """The table, best first, with the strongest baseline named and each net against it."""
    best = strongest_baseline(summary)
    stations = sorted({k for e in summary.values() for k in e["stations"]})
    rows = []
    for name, e in summary.items():
        versus = "—" if best is None or name == best else \
            f"{e['mae'] - summary[best]['mae']:+.3f}"
        rows.append([name, e["kind"], str(len(e["seeds"]) or "—"),
                     *(fmt(m, None, 3) for m in e["fold_mae"]), fmt(e["mae"], e["fold_std"], 3),
                     fmt(e["seed_std"], None, 3) if e["seed_std"] is not None else "—",
                     *(fmt(e["stations"][k], None, 3) for k in stations), versus,
                     f"{e['seconds']:.1f}"])
    header = ["candidate", "kind", "seeds", *(f"fold {f.index}" for f in folds),
              "mean ± std over folds", "seed std", *stations,
              f"vs {best}" if best else "vs baseline", "seconds per run"]
    lines = [f"# Selection on rolling-origin folds (honest MAE over h = 1..{horizon}, {units})",
             "", markdown_table(header, rows), "",
             f"Strongest baseline: **{best}**." if best else "No baseline was scored.", "",
             "Folds (the test split is never read; each fold's scalers, nets and baselines "
             "are fitted on its own training part, and with data.refit fitted again on it "
             "and its early-stopping block):", ""]
    lines += [f"- {f.describe()}; {summary[next(iter(summary))]['n_targets'][i]} targets"
              for i, f in enumerate(folds)]
    return "\n".join(lines) + "\n"


def selection_csv(scores: list[Score]) -> str:
    """One row per (candidate, fold, seed)."""
    rows = [s.row() for s in scores]
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
