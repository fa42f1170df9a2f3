"""The design matrix: from the study's rollout, from a CSV, and the refusals that name the row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialvault.design.analytic import Assumptions
from trialvault.design.matrix import from_study, read_csv, volumes
from trialvault.design.statement import design_statement
from trialvault.errors import InputFileError, UsageError
from trialvault.study import load_study
from trialvault.study.documents import render

REPO = Path(__file__).resolve().parents[3]
NWD = REPO / "studies" / "no-wrong-door.toml"


def test_the_nwd_design_follows_the_rollout() -> None:
    study = load_study(NWD)
    d = from_study(study)
    assert d.shape == (5, 24)  # 2019Q1 .. 2024Q4: the index window before 12 months' follow-up
    assert d.periods[0] == "2019Q1" and d.periods[-1] == "2024Q4"
    first = sorted(study.design.rollout, key=lambda r: r.step_date)[0]
    assert d.clusters[0] == str(first.la)
    assert d.exposure.sum(axis=1).tolist() == [17, 15, 13, 11, 9]
    assert volumes(d, study, None)[:, 0].tolist() == [146, 72, 109, 272, 154]


def test_transition_months_and_mid_period_steps() -> None:
    study = load_study(NWD)
    rollout = [r.replace(step_date=r.step_date + dt.timedelta(days=20))
               if r.la == 354 else r for r in study.design.rollout]
    analysis = study.analysis.replace(transition_months=6)
    changed = study.replace(analysis=analysis, design=study.design.replace(rollout=rollout))
    d = from_study(changed)
    assert any("LA 354" in n and "inside period 2020Q4" in n for n in d.notes)
    row = d.exposure[d.clusters.index("807")]
    assert np.isnan(row).sum() == 2  # two quarters before the step are not observed


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "design.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_design_with_an_unobserved_cell(tmp_path: Path) -> None:
    d = read_csv(_csv(tmp_path, "0,1,1\n0,0,1\n,0,1\n"))
    assert d.shape == (3, 3) and np.isnan(d.exposure[2, 0])


@pytest.mark.parametrize("text,line,rule,words", [
    ("0,1,1\n0,2,1\n", 2, "D1", "row 2, column 2: exposure must be 0 or 1"),
    ("0,1,1\n0,yes,1\n", 2, "D1", "row 2"),
    ("0,1,1\n\n1,0,1\n", 3, "D2", "row 2: exposure goes from 1 back to 0"),
    ("0,1,1\n0,0,0\n", 2, "D3", "row 2: the cluster is never exposed"),
    ("0,1,1\n1,1,1\n", 2, "D3", "row 2: the cluster is exposed in every observed period"),
    ("0,1,1\n,,\n", None, "D", ""),
    ("0,1,1\n0,1\n", 2, "D4", "row 2 has 2 periods"),
    ("0,1\n", None, "D4", "at least 2 clusters"),
])
def test_bad_design_matrices_are_refused_naming_the_row(tmp_path: Path, text: str,
                                                        line: int | None, rule: str,
                                                        words: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(InputFileError) as err:
        read_csv(path)
    message = str(err.value)
    assert str(path) in message and f"rule {rule}" in message and words in message
    if line is not None:
        assert f"line {line}" in message


@settings(max_examples=50, deadline=None)
@given(steps=st.lists(st.integers(1, 5), min_size=2, max_size=8), data=st.data())
def test_any_monotone_design_parses_and_any_bad_cell_is_named(tmp_path_factory: pytest.TempPathFactory,
                                                              steps: list[int],
                                                              data: st.DataObject) -> None:
    rows = [[1 if j >= s else 0 for j in range(6)] for s in steps]
    folder = tmp_path_factory.mktemp("m")
    good = folder / "good.csv"
    good.write_text("\n".join(",".join(map(str, r)) for r in rows), encoding="utf-8")
    assert read_csv(good).exposure.tolist() == rows
    i = data.draw(st.integers(0, len(rows) - 1))
    j = data.draw(st.integers(0, 5))
    bad_rows = [[str(v) for v in r] for r in rows]
    bad_rows[i][j] = data.draw(st.sampled_from(["2", "-1", "0.5", "x", "1.0"]))
    bad = folder / "bad.csv"
    bad.write_text("\n".join(",".join(r) for r in bad_rows), encoding="utf-8")
    with pytest.raises(InputFileError, match=f"line {i + 1}, rule D1 values: row {i + 1}, "
                                             f"column {j + 1}:"):
        read_csv(bad)


@pytest.mark.parametrize("icc", [-0.1, 1.0, 1.5, float("nan")])
def test_icc_outside_zero_one_is_refused(icc: float) -> None:
    with pytest.raises(UsageError, match="ICC"):
        Assumptions(icc=icc)


def test_other_assumptions_are_checked() -> None:
    with pytest.raises(UsageError, match="CAC"):
        Assumptions(icc=0.1, cac=1.2)
    with pytest.raises(UsageError, match="closed cohort"):
        Assumptions(icc=0.1, iac=0.3)


def test_the_privacy_notice_states_the_design_with_the_same_numbers() -> None:
    study = load_study(NWD)
    statement = design_statement(study)
    assert statement.result is not None and statement.result.mdes is not None
    notice = render(study, "notice", "md")
    assert "## How the study is designed" in notice
    assert f"{100 * statement.result.mdes:.1f} percentage points" in notice
    assert "Fisher-Yates" in notice and "illustrative" in notice
    assert study.design.power is not None and study.design.power.basis in notice
