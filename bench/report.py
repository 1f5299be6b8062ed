"""The one shape of a bench result: each figure beside its ceiling measured in the same run, and their ratio.

`row` builds one entry (ratio = figure / ceiling, for rates and for times alike, so a rate's goal is a
lower bound on the ratio and a time's an upper bound); `emit` prints the rows for a reader and, as the
last line, the one JSON object of the run (issue 16: every figure as a ratio to its own ceiling).
"""

from __future__ import annotations

import json
from typing import Any


def row(figure: float, ceiling: float | None, unit: str, *, ratio_min: float | None = None,
        ratio_max: float | None = None, figure_min: float | None = None,
        figure_max: float | None = None) -> dict[str, Any]:
    """One figure, its ceiling (None: no ceiling for this row), their ratio, the goal and whether it is met."""
    ratio = round(figure / ceiling, 3) if ceiling else None
    goals: list[str] = []
    met = True
    if ratio_min is not None:
        goals.append(f"ratio >= {ratio_min}")
        met = met and ratio is not None and ratio >= ratio_min
    if ratio_max is not None:
        goals.append(f"ratio <= {ratio_max}")
        met = met and ratio is not None and ratio <= ratio_max
    if figure_min is not None:
        goals.append(f">= {figure_min} {unit}")
        met = met and figure >= figure_min
    if figure_max is not None:
        goals.append(f"<= {figure_max} {unit}")
        met = met and figure <= figure_max
    return {"figure": figure, "ceiling": ceiling, "ratio": ratio, "unit": unit, "goal": "; ".join(goals),
            "met": met}


def emit(figures: dict[str, Any]) -> None:
    """Print figures["rows"] as a table, then all figures (with `goals_met`) as the last line, one JSON object."""
    rows: dict[str, dict[str, Any]] = figures.get("rows", {})
    print("== figure vs ceiling (same run)")
    for name, r in rows.items():
        goal = f"goal {r['goal']}: {'met' if r['met'] else 'MISSED'}" if r["goal"] else "no goal"
        print(f"   {name}: {r['figure']} {r['unit']} vs {r['ceiling']} -> ratio {r['ratio']}; {goal}")
    figures["goals_met"] = all(r["met"] for r in rows.values())
    print(json.dumps(figures), flush=True)
