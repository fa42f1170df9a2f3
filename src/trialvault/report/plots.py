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

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from trialvault.study.model import StudyFile

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


def rollout_diagram(study: StudyFile, starts: Sequence[dt.date], labels: Sequence[str]) -> str:
    """The stepped wedge: one row per LA (in step order), one column per period, shaded from the
    period its step falls in."""
    steps = sorted(study.design.rollout, key=lambda s: (s.step_date, s.la))
    edges = _period_edges(starts)
    fig = Figure(figsize=(max(6.0, 0.55 * len(labels) + 2.5), 0.5 * len(steps) + 1.4))
    ax = fig.add_subplot()
    for row, step in enumerate(steps):
        for j in range(len(labels)):
            on = edges[j + 1] > step.step_date  # any part of the period after the step
            ax.add_patch(_rect(j, row, _INTERVENTION if on else _CONTROL))
    ax.set_xlim(0, len(labels))
    ax.set_ylim(len(steps), 0)
    ax.set_xticks(np.arange(len(labels)) + 0.5, labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(np.arange(len(steps)) + 0.5,
                  [f"{study.la(s.la).name} ({s.step_date:%b %Y})" for s in steps], fontsize=9)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.legend(handles=[Patch(color=_CONTROL, label="usual practice"),
                       Patch(color=_INTERVENTION, label=study.study.intervention)],
              loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2, frameon=False,
              fontsize=9)
    return to_data_uri(fig, tight=True)


def _rect(x: float, y: float, color: str) -> Patch:
    from matplotlib.patches import Rectangle

    return Rectangle((x + 0.04, y + 0.08), 0.92, 0.84, color=color)


def trends_by_la(values: pd.DataFrame, starts: Sequence[dt.date], study: StudyFile,
                 la_codes: Sequence[int], *, ylabel: str, percent: bool) -> str:
    """Small multiples: one panel per LA (rows of `values`, by name), the step marked."""
    names = list(values.index)
    n = len(names)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(3.3 * cols, 2.4 * rows + 0.4))
    x = pd.to_datetime(list(starts))
    span = (pd.Timestamp(_period_edges(starts)[0]), pd.Timestamp(_period_edges(starts)[-1]))
    top = np.nanmax(values.to_numpy(dtype=float)) if np.isfinite(values.to_numpy(
        dtype=float)).any() else 1.0
    for k, (name, code) in enumerate(zip(names, la_codes, strict=True)):
        ax = fig.add_subplot(rows, cols, k + 1)
        y = values.loc[name].to_numpy(dtype=float) * (100 if percent else 1)
        ax.plot(x, y, marker="o", ms=3, color=_LINE, lw=1.4)
        hidden = np.isnan(y)
        if hidden.any():  # say where a value was suppressed, so a gap never looks like a bug
            ax.plot(x[hidden], np.zeros(hidden.sum()), ls="none", marker="x", ms=4,
                    color="#999999", label="suppressed")
        ax.axvline(pd.Timestamp(study.step_date(code)), color="#c0392b", ls="--", lw=1)
        ax.set_title(str(name), fontsize=9)
        ax.set_xlim(*span)  # the same window in every panel, even one that is all gaps
        ax.set_ylim(0, (top * (100 if percent else 1)) * 1.15 or 1)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(_year_locator())
        ax.xaxis.set_major_formatter(_year_formatter())
        if k % cols == 0:
            ax.set_ylabel(ylabel, fontsize=8)
    if np.isnan(values.to_numpy(dtype=float)).any():
        fig.legend(handles=[Line2D([], [], ls="none", marker="x", color="#999999",
                                   label="suppressed (disclosure control)")],
                   loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    return to_data_uri(fig)


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
