"""Re-identification risk: sdcMicro's published example, and agreement with pycanon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycanon import anonymity

from trialvault.prepare.risk import k_anonymity, record_frequencies, risk_summary


def test_sdcmicro_published_example() -> None:
    # sdcMicro's freqCalc example: three key variables over eight records.
    table = pa.table({"A": [2, 3, 2, 2, 3, 3, 1, 2], "B": [3, 3, 3, 3, 3, 3, 4, 3],
                      "C": [1, 3, 1, 2, 1, 1, 1, 1]})
    assert record_frequencies(table, ["A", "B", "C"]) == [3, 1, 3, 1, 2, 2, 1, 3]
    assert k_anonymity(table, ["A", "B", "C"]) == 1


def test_blank_is_a_value_of_its_own() -> None:
    table = pa.table({"sex": ["M", None, None, "F"], "eth": ["WBRI", "WBRI", "WBRI", None]})
    assert record_frequencies(table, ["sex", "eth"]) == [1, 2, 2, 1]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_k_agrees_with_pycanon(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    frame = pd.DataFrame({
        "sex": rng.choice(["M", "F", "U"], n, p=[0.5, 0.49, 0.01]),
        "ethnicity": rng.choice(["WBRI", "WOTH", "ABAN", "BAFR", "MWBC"], n),
        "age_months_at_reference": rng.integers(140, 216, n) // (1 if seed < 3 else 24),
        "disability": rng.choice([True, False], n, p=[0.1, 0.9]),
        "la_code": rng.choice([354, 807], n),
    })
    qis = list(frame.columns)
    ours = k_anonymity(pa.Table.from_pandas(frame, preserve_index=False), qis)
    assert ours == anonymity.k_anonymity(frame, qis)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("MFU"), st.integers(0, 3), st.booleans()),
                min_size=1, max_size=60))
def test_frequencies_are_class_sizes(rows: list[tuple[str, int, bool]]) -> None:
    table = pa.table({"s": [r[0] for r in rows], "a": [r[1] for r in rows],
                      "d": [r[2] for r in rows]})
    freqs = record_frequencies(table, ["s", "a", "d"])
    assert freqs == [rows.count(r) for r in rows]
    frame = table.to_pandas()
    assert min(freqs) == anonymity.k_anonymity(frame, ["s", "a", "d"])


def test_summary_counts_and_coarsening() -> None:
    children = pa.table({"sex": ["M", "M", "F", "F"], "ethnicity": ["WBRI"] * 4,
                         "age_months_at_reference": [150, 151, 160, 160],
                         "disability": [False] * 4, "la_code": [354] * 4})
    summary = risk_summary(children, sizes=(2, 3))
    assert summary["k_anonymity"] == 1 and summary["unique_records"] == 2
    assert summary["equivalence_classes"] == 3 and summary["uniqueness"] == 0.5
    assert summary["records_in_classes_smaller_than"] == {"2": 2, "3": 4}
    years = summary["with_age_in_years"]
    assert years["k_anonymity"] == 2 and years["unique_records"] == 0
    assert "age_years_at_reference" in years["quasi_identifiers"]
