"""Figures measured several times, their medians and spreads, targets, the table and the JSON."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank) of `values`; nan when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Figure:
    """One quantity measured once per run."""

    key: str
    label: str
    unit: str
    runs: list[float] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median over the runs (nan when nothing was measured)."""
        return statistics.median(self.runs) if self.runs else float("nan")

    @property
    def spread(self) -> float:
        """(max - min) / median over the runs, as a fraction."""
        if len(self.runs) < 2 or not self.median:
            return 0.0
        return (max(self.runs) - min(self.runs)) / abs(self.median)

    def text(self) -> str:
        """`12,345 ±3%` style."""
        if not self.runs:
            return "n/a"
        return f"{_number(self.median)} ±{self.spread * 100:.0f}%"


@dataclass
class Target:
    """A goal from issue 8 and whether this run met it."""

    name: str
    passed: bool | None  # None: not measured in this run
    detail: str


@dataclass
class Results:
    """Everything one `python -m bench` run measured."""

    meta: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, key: str, label: str, unit: str) -> Figure:
        """The figure under `key`, created on first use."""
        found = self.figures.get(key)
        if found is None:
            found = self.figures[key] = Figure(key, label, unit)
        return found

    def add(self, key: str, label: str, unit: str, value: float, **details: Any) -> None:
        """Record one run's value (and optional details) of a figure."""
        found = self.figure(key, label, unit)
        found.runs.append(value)
        if details:
            found.details.append(details)

    def median(self, key: str) -> float:
        """Median of a figure, nan when it was not measured."""
        found = self.figures.get(key)
        return found.median if found else float("nan")

    def target(self, name: str, passed: bool | None, detail: str) -> None:
        """Record a target's verdict."""
        self.targets.append(Target(name, passed, detail))

    def write_json(self, path: Path) -> None:
        """Write every run, median and spread to `path`."""
        body = {
            "meta": self.meta,
            "figures": {
                key: {**asdict(found), "median": found.median, "spread": found.spread}
                for key, found in self.figures.items()
            },
            "targets": [asdict(target) for target in self.targets],
            "notes": self.notes,
        }
        path.write_text(json.dumps(body, indent=2, default=_json_default) + "\n")


def _json_default(value: object) -> object:
    if isinstance(value, float) and value != value:  # nan
        return None
    return str(value)


def _number(value: float) -> str:
    if value != value:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, nan when either is missing or the denominator is 0."""
    if numerator != numerator or denominator != denominator or not denominator:
        return float("nan")
    return numerator / denominator


def ratio_text(value: float) -> str:
    """`2.5×`, or n/a."""
    return "n/a" if value != value else f"{value:.2f}×"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with columns padded to their widest cell."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
