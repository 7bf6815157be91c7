# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Summaries of repeated measurements and the printed table."""

from __future__ import annotations

import statistics
from typing import Any, Dict, List, Sequence


def summarize(samples: Sequence[float]) -> Dict[str, Any]:
    """median/min/max of the samples (all of them kept, rounded, for the JSON file)."""
    if not samples:
        raise ValueError("no samples to summarize")
    return {
        "median": round(statistics.median(samples), 3),
        "min": round(min(samples), 3),
        "max": round(max(samples), 3),
        "n": len(samples),
        "samples": [round(value, 3) for value in samples],
    }


def _cell(value: Any) -> str:
    if isinstance(value, dict) and "median" in value:
        if value["n"] == 1:
            return _number(value["median"])
        return "%s (%s–%s)" % (_number(value["median"]), _number(value["min"]), _number(value["max"]))
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "none"
    return _number(value) if isinstance(value, float) else str(value)


def _number(value: float) -> str:
    if value == int(value) and abs(value) >= 10:
        return str(int(value))
    return "%.3g" % value if abs(value) < 10 else "%.1f" % value


def render_table(rows: List[List[Any]], header: Sequence[str]) -> str:
    """A plain-text table: numbers as 'median (min–max)', lists joined by commas."""
    cells = [list(header)] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    lines = ["  ".join(text.ljust(widths[column]) for column, text in enumerate(row)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
