"""The leakage report's text: the verdict and report.md."""

from __future__ import annotations

from forecast.evaluation.scoring import ModelResult
from forecast.evaluation.selection import ensemble_name
from forecast.report.tables import fmt, markdown_table


def verdict(entries: dict, groups: dict[str, list[ModelResult]], units: str,
            strongest: str | None = None) -> str:
    """Two or three plain sentences: how good the leaky model looks, and how it really does."""
    causal = next((k for k, g in groups.items() if g[0].model.hparams.causal), None)
    standard = next((k for k, g in groups.items() if not g[0].model.hparams.causal), None)
    pers = entries["persistence"]["honest_mae"]
    lines = []
    if standard is not None:
        s = entries[standard]
        if causal is not None:
            c = entries[causal]
            ratio = c["teacher_forced_mae"] / s["teacher_forced_mae"]
            looks = f"{ratio:.1f}x better than" if ratio >= 1.05 else "no better than"
            lines.append(
                f"Allowed to peek at the future, the {standard} model looks {looks} the "
                f"{causal} one: teacher-forced MAE {s['teacher_forced_mae']:.2f} vs "
                f"{c['teacher_forced_mae']:.2f} {units}.")
        worse = "worse" if s["honest_mae"] > pers else "better"
        tail = ""
        if causal is not None:
            c = entries[causal]
            word = "worse" if s["honest_mae"] > c["honest_mae"] else "better"
            tail = f" and {word} than the {causal} model's {c['honest_mae']:.2f} {units}"
        lines.append(
            f"Made to forecast honestly (rolling origin, nothing after the origin), it scores "
            f"{s['honest_mae']:.2f} {units}: its teacher-forced MAE understates the real error "
            f"by an inflation factor of {s['inflation']:.1f}x, {worse} than persistence "
            f"({pers:.2f} {units}){tail}.")
    if causal is not None:
        c = entries[causal]
        audited = c["audit"]["measured_future"]
        lines.append(
            f"The {causal} model's teacher-forced and honest scores agree "
            f"({c['teacher_forced_mae']:.2f} vs {c['honest_mae']:.2f} {units}, largest "
            f"forecast difference {c['max_abs_diff_teacher_forced_vs_honest']:.1e}), and the "
            f"audit measures {audited} future input steps in its receptive field"
            + (f", against {entries[standard]['audit']['measured_future']} for the "
               f"{standard} model." if standard is not None else "."))
    if causal is not None and strongest is not None:
        c, b = entries[causal], entries[strongest]
        gap = c["honest_mae"] - b["honest_mae"]
        lines.append(
            f"The strongest baseline, chosen on validation, is {strongest} "
            f"({b['val_honest_mae']:.2f} {units} there); on the test split the {causal} model "
            f"scores {c['honest_mae']:.2f} against its {b['honest_mae']:.2f} {units}, "
            f"{'ahead by' if gap < 0 else 'behind by'} {abs(gap):.2f}.")
        ens = ensemble_name(causal, len(groups[causal]))
        if ens in entries:
            gap = entries[ens]["honest_mae"] - b["honest_mae"]
            lines.append(f"The mean of its {len(groups[causal])} seeds' forecasts scores "
                         f"{entries[ens]['honest_mae']:.2f}, "
                         f"{'ahead by' if gap < 0 else 'behind by'} {abs(gap):.2f}.")
    return " ".join(lines)


def report_markdown(entries: dict, groups: dict[str, list[ModelResult]], baselines: list[str],
                    protocol: dict, figures: dict[str, str], text: str, units: str) -> str:
    """report.md: verdict, score tables, audit table, figures, protocol."""
    models = list(groups)
    horizon = protocol["horizon"]
    out = ["# Leakage report", "", "## Verdict", "", text, ""]

    def spread(name: str, key: str) -> float | None:
        return entries[name]["spread"][key]["std"] if name in groups else None

    rows = []
    for name in [*models, *baselines]:
        e = entries[name]
        kind = "baseline" if name in baselines else ("causal" if e["causal"] else "non-causal")
        tf = fmt(e["teacher_forced_mae"], spread(name, "teacher_forced_mae")) \
            if name in groups else "(same)"
        rows.append([name, kind, str(len(e.get("seeds", [])) or "—"), tf,
                     fmt(e["honest_mae"], spread(name, "honest_mae")),
                     fmt(e["honest_rmse"], spread(name, "honest_rmse")), fmt(e["skill"], None, 3),
                     f"{e['inflation']:.2f}x" if name in groups else "1.00x"])
    out += [f"## Test scores, all series, mean over h = 1..{horizon} ({units})", "",
            markdown_table(["model", "kind", "seeds", "teacher-forced MAE", "honest MAE",
                            "honest RMSE", "honest skill vs persistence",
                            "honest / teacher-forced"], rows, "llrrrrrr"), "",
            "Mean ± standard deviation across seeds where several were trained. Baselines read "
            "nothing after the origin, so both protocols give them the same score.", ""]

    stations = list(entries["persistence"]["stations"])
    headline = protocol["station"]
    rows = [[name, *(fmt(entries[name]["stations"][s]["honest_mae"]) for s in stations),
             fmt(entries[name]["honest_mae"])] for name in [*models, *baselines]]
    out += [f"## Honest MAE per series ({units}; headline series: {headline})", "",
            markdown_table(["model", *stations, "all"], rows), ""]
    rows = [[name, *(fmt(entries[name]["stations"][s]["teacher_forced_mae"]) for s in stations),
             fmt(entries[name]["teacher_forced_mae"])] for name in models]
    out += [f"Teacher-forced MAE per series ({units}):", "",
            markdown_table(["model", *stations, "all"], rows), ""]

    steps = [h for h in (1, 2, 3, 6, 12, 18, 24, 36, 48) if h <= horizon]
    if horizon not in steps:
        steps.append(horizon)
    rows = []
    for name in [*models, *baselines]:
        e = entries[name]
        rows.append([f"{name} (honest)", *(fmt(e["mae_by_horizon"][h - 1]) for h in steps)])
        if name in groups and not e["causal"]:
            rows.append([f"{name} (teacher-forced)",
                         *(fmt(e["teacher_forced_mae_by_horizon"][h - 1]) for h in steps)])
    out += [f"## MAE by horizon step, all series ({units})", "",
            markdown_table(["model", *(f"h={h}" for h in steps)], rows), ""]

    rows = []
    for name in models:
        a = entries[name]["audit"]
        ok = (a["measured_past"], a["measured_future"]) == (a["expected_past"],
                                                            a["expected_future"])
        leak = "reads no future step" if a["measured_future"] == 0 else \
            f"reads {a['measured_future']} future steps"
        rows.append([name, str(a["receptive_field"]), str(a["expected_past"]),
                     str(a["expected_future"]), str(a["measured_past"]),
                     str(a["measured_future"]),
                     f"{leak}; {'as configured' if ok else 'DIFFERS from the config'}"])
    out += ["## Leakage audit (measured by autograd on the trained checkpoints)", "",
            markdown_table(["model", "R", "configured past", "configured future",
                            "measured past", "measured future", "verdict"], rows,
                           "lrrrrrl"), "",
            f"Output step t = {protocol['audit_position']} of a {protocol['audit_window']}-step "
            "window of random inputs; an input step counts when the gradient of any of the H "
            "outputs at t with respect to it is non-zero.", ""]

    captions = {
        "forecast_week": f"Forecasts issued {protocol['figure_lead']} h ahead over one test "
                         f"week at {headline}",
        "mae_by_horizon": "MAE by horizon step, every model and baseline",
        "leak": "Teacher-forced vs honest MAE per model: the leak at a glance",
        "receptive_field": "Measured receptive field of each trained model",
    }
    out += ["## Figures", ""]
    for key, file in figures.items():
        out += [f"![{captions[key]}]({file})", ""]

    runs = [[name, str(run.seed), str(run.path)] for name, g in groups.items() for r in g
            for run in r.runs or [r.run]]
    out += ["## Protocol", "",
            f"- Test period {protocol['test_start']} .. {protocol['test_end']}; "
            f"{protocol['n_origins']} origins x {horizon} steps: {protocol['n_targets']} observed "
            f"targets, the same for every model and baseline "
            f"({protocol['n_origins'] * horizon - protocol['n_targets']} missing targets are "
            "not scored).",
            f"- Every origin has {protocol['history']} steps of history (the largest need among "
            "the models and baselines).",
            "- Teacher-forced: dense test windows, every position scored, as in training. "
            "Honest: one window ending at each origin, only its last position's forecasts used.",
            f"- Scored targets from {protocol['first_target']} to {protocol['last_target']} "
            "UTC (an origin belongs to the test split by its targets alone).",
            "- Baselines: " + ", ".join(protocol["baselines"]) + "; fitted on the training "
            "split, and named by their honest MAE on the validation split (never the test "
            f"split): the strongest is {protocol['strongest_baseline']}. "
            + ("Like the nets (data.refit), they were then fitted again on train + validation "
               "for the test split." if protocol.get("refit") else
               "The test split is scored with that fit."),
            "", markdown_table(["model", "seed", "run"], runs, "lrl"), ""]
    return "\n".join(out)
