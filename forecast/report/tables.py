"""Markdown tables and number formatting for the reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None,
) -> str:
    """A GitHub-flavoured markdown table; ``align`` has one 'l' or 'r' per column
    (default: the first column left, the rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align={align!r}: one 'l' or 'r' per column ({len(header)})")
    widths = [len(h) for h in header]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {list(row)} has {len(row)} cells, header has {len(header)}")
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
    rule = "| " + " | ".join(
        ("-" * w) if a == "l" else ("-" * (w - 1) + ":") for a, w in zip(align, widths, strict=True)
    ) + " |"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def fmt(mean: float, std: float | None = None, digits: int = 2) -> str:
    """'3.62' or '3.62 ± 0.09' (the spread only where there is one)."""
    if mean is None or not np.isfinite(mean):
        return "—"
    if std is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
