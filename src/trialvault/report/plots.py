"""Figures of the report, drawn with matplotlib's object API (no pyplot state, Agg canvas) and
embedded as base64 PNG data URIs so the report is one self-contained file.

Every number plotted comes from a disclosure-checked output (`CheckedOutput.numeric()`:
suppressed cells are NaN and show as gaps) or from the study file's public design.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

_CONTROL, _INTERVENTION = "#d9d9d9", "#1f6f8b"
_LINE = "#1f6f8b"
_DPI = 110


def to_data_uri(fig: Figure, *, tight: bool = False) -> str:
    """PNG bytes of `fig` as a data URI (the figure is drawn on an Agg canvas). `tight` crops
    to the drawn content (an extra draw: only for figures without `tight_layout`)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight" if tight else None,
                metadata={"Software": None})  # no version string: the bytes are reproducible
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _period_edges(starts: Sequence[dt.date]) -> list[dt.date]:
    """Period starts plus the start of the period after the last (same length as the last)."""
    edges = list(starts)
    if len(edges) >= 2:
        step = pd.Timestamp(edges[-1]) - pd.Timestamp(edges[-2])
        edges.append((pd.Timestamp(edges[-1]) + step).date())
    else:
        edges.append((pd.Timestamp(edges[-1]) + pd.DateOffset(months=6)).date())
    return edges


def rollout_diagram(steps: Sequence[tuple[str, dt.date]], starts: Sequence[dt.date],
                    labels: Sequence[str], intervention: str) -> tuple[str, dict[str, str]]:
    """The stepped wedge: one row per LA in step order (name, step date, from the study), one
    column per period, shaded from the period its step falls in."""
    edges = _period_edges(starts)
    fig = Figure(figsize=(max(6.0, 0.55 * len(labels) + 2.5), 0.5 * len(steps) + 1.4))
    ax = fig.add_subplot()
    marks = {}
    for row, (name, step) in enumerate(steps):
        for j in range(len(labels)):
            on = edges[j + 1] > step  # any part of the period after the step
            ax.add_patch(_rect(j, row, _INTERVENTION if on else _CONTROL))
        marks[name] = step.isoformat()
    ax.set_xlim(0, len(labels))
    ax.set_ylim(len(steps), 0)
    ax.set_xticks(np.arange(len(labels)) + 0.5, labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(np.arange(len(steps)) + 0.5,
                  [f"{name} ({step:%b %Y})" for name, step in steps], fontsize=9)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.legend(handles=[Patch(color=_CONTROL, label="usual practice"),
                       Patch(color=_INTERVENTION, label=intervention)],
              loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2, frameon=False,
              fontsize=9)
    return to_data_uri(fig, tight=True), marks


def _rect(x: float, y: float, color: str) -> Patch:
    from matplotlib.patches import Rectangle

    return Rectangle((x + 0.04, y + 0.08), 0.92, 0.84, color=color)


def trends_by_la(values: pd.DataFrame, starts: Sequence[dt.date],
                 panels: Sequence[tuple[str, dt.date]], *, ylabel: str, percent: bool
                 ) -> tuple[str, dict[str, str]]:
    """Small multiples: one panel per row of `values`, titled and marked with the step date
    given for that row in `panels` (name, step date) — the pairing comes from the release's
    own row keys, never from the order of a dict. Returns the PNG and, read back from the
    drawn artists, each panel's title and the date its step line marks."""
    n = len(panels)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(3.3 * cols, 2.4 * rows + 0.4))
    x = pd.to_datetime(list(starts))
    span = (pd.Timestamp(_period_edges(starts)[0]), pd.Timestamp(_period_edges(starts)[-1]))
    data = values.to_numpy(dtype=float) * (100 if percent else 1)
    top = np.nanmax(data) if np.isfinite(data).any() else 1.0
    for k, (name, step) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        y = data[k]
        ax.plot(x, y, marker="o", ms=3, color=_LINE, lw=1.4)
        hidden = np.isnan(y)
        if hidden.any():  # say where a value was suppressed, so a gap never looks like a bug
            ax.plot(x[hidden], np.zeros(hidden.sum()), ls="none", marker="x", ms=4,
                    color="#999999", label="suppressed")
        line = ax.axvline(pd.Timestamp(step), color="#c0392b", ls="--", lw=1)
        line.set_gid("step")
        ax.set_title(str(name), fontsize=9)
        ax.set_xlim(*span)  # the same window in every panel, even one that is all gaps
        ax.set_ylim(0, (top * 1.15) or 1)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(_year_locator())
        ax.xaxis.set_major_formatter(_year_formatter())
        if k % cols == 0:
            ax.set_ylabel(ylabel, fontsize=8)
    if np.isnan(data).any():
        fig.legend(handles=[Line2D([], [], ls="none", marker="x", color="#999999",
                                   label="suppressed (disclosure control)")],
                   loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    return to_data_uri(fig), step_marks(fig)


def step_marks(fig: Figure) -> dict[str, str]:
    """Each panel's title → the date its step line is drawn at (read from the artists)."""
    from matplotlib.dates import num2date

    marks = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_gid() == "step":
                x0: Any = np.ravel(np.asarray(line.get_xdata(), dtype=object))[0]
                day = (pd.Timestamp(x0).date() if isinstance(x0, dt.date | np.datetime64)
                       else num2date(float(x0)).date())
                marks[ax.get_title()] = day.isoformat()
    return marks


def _year_locator():  # type: ignore[no-untyped-def]
    from matplotlib.dates import YearLocator

    return YearLocator()


def _year_formatter():  # type: ignore[no-untyped-def]
    from matplotlib.dates import DateFormatter

    return DateFormatter("%Y")


def forest(rows: pd.DataFrame, *, null: float, xlabel: str) -> str:
    """Estimates with confidence intervals, one line per row (`label`, estimate, ci_low,
    ci_high as floats; NaN rows are skipped)."""
    rows = rows.dropna(subset=["estimate"]).reset_index(drop=True)
    fig = Figure(figsize=(7.0, 0.45 * max(len(rows), 1) + 1.0))
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    est = rows["estimate"].to_numpy(float)
    lo = rows["ci_low"].to_numpy(float)
    hi = rows["ci_high"].to_numpy(float)
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color=_LINE, capsize=3)
    ax.axvline(null, color="#555", lw=1, ls=":")
    ax.set_yticks(y, list(rows["label"]), fontsize=8)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    return to_data_uri(fig)


def event_study(points: pd.DataFrame, *, title: str, period_word: str) -> str:
    """Effect by time since the step (event_time, estimate, ci_low, ci_high as floats)."""
    pts = points.dropna(subset=["estimate"]).sort_values("event_time")
    fig = Figure(figsize=(7.0, 3.2))
    ax = fig.add_subplot()
    e = pts["event_time"].to_numpy(float)
    est = pts["estimate"].to_numpy(float)
    pre = e < 0
    for mask, color, label in ((pre, "#7f8c8d", "before the step"),
                               (~pre, _LINE, "after the step")):
        if mask.any():
            ax.errorbar(e[mask], est[mask],
                        yerr=[est[mask] - pts["ci_low"].to_numpy(float)[mask],
                              pts["ci_high"].to_numpy(float)[mask] - est[mask]],
                        fmt="o", color=color, capsize=2, ms=4, label=label)
    ax.axhline(0, color="#555", lw=1, ls=":")
    ax.axvline(-0.5, color="#c0392b", lw=1, ls="--")
    ax.set_xlabel(f"{period_word.capitalize()}s since the local authority's step", fontsize=9)
    ax.set_ylabel("effect (ATT)", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return to_data_uri(fig)
