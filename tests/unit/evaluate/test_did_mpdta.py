"""Callaway–Sant'Anna wrapper reproduces R `did` (att_gt + aggte) on the public reference data.

References: /work/shared/external/did (R `did::att_gt(bstrap=FALSE, cband=FALSE,
base_period="varying", panel=TRUE)` with analytic SEs). Agreement to 4 decimals is required.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialvault.evaluate.did import AGGREGATIONS, DidResult, callaway_santanna

# scenario → (data file, yname, tname, idname, gname, control group, xformla, est_method)
SCENARIOS: dict[str, tuple[str, str, str, str, str, str, str | None, str]] = {
    "mpdta_nev_dr": ("mpdta.csv", "lemp", "year", "countyreal", "first.treat", "nevertreated",
                     None, "dr"),
    "mpdta_nyt_dr": ("mpdta.csv", "lemp", "year", "countyreal", "first.treat", "notyettreated",
                     None, "dr"),
    "mpdta_nev_reg_cov": ("mpdta.csv", "lemp", "year", "countyreal", "first.treat",
                          "nevertreated", "~lpop", "reg"),
    "mpdta_nev_ipw": ("mpdta.csv", "lemp", "year", "countyreal", "first.treat", "nevertreated",
                      None, "ipw"),
    "sim_nev_dr": ("sim_data.csv", "Y", "period", "id", "G", "nevertreated", "~X", "dr"),
}
TOL = 5e-5  # "to 4 decimals"


@pytest.fixture(scope="module")
def fitted(shared_external: Path) -> dict[str, DidResult]:
    did = shared_external / "did"
    out = {}
    for name, (file, y, t, i, g, control, xf, method) in SCENARIOS.items():
        data = pd.read_csv(did / file)
        out[name] = callaway_santanna(data, yname=y, tname=t, idname=i, gname=g,
                                      control_group=control,  # type: ignore[arg-type]
                                      xformla=xf, est_method=method)  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def ref_attgt(shared_external: Path) -> pd.DataFrame:
    return pd.read_csv(shared_external / "did" / "ref_attgt.csv")


@pytest.fixture(scope="module")
def ref_aggte(shared_external: Path) -> pd.DataFrame:
    return pd.read_csv(shared_external / "did" / "ref_aggte.csv")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_att_gt_matches_r(fitted: dict[str, DidResult], ref_attgt: pd.DataFrame,
                          scenario: str) -> None:
    ref = ref_attgt[ref_attgt["scenario"] == scenario]
    ours = fitted[scenario].att_gt
    merged = ref.merge(ours, on=["group", "t"], suffixes=("_r", ""), validate="one_to_one")
    assert len(merged) == len(ref) == len(ours)
    np.testing.assert_allclose(merged["att"], merged["att_r"], atol=TOL, rtol=0)
    np.testing.assert_allclose(merged["se"], merged["se_r"], atol=TOL, rtol=0)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", AGGREGATIONS)
def test_aggregations_match_r(fitted: dict[str, DidResult], ref_aggte: pd.DataFrame,
                              scenario: str, kind: str) -> None:
    ref = ref_aggte[(ref_aggte["scenario"] == scenario) & (ref_aggte["type"] == kind)]
    assert len(ref) >= 1
    result = fitted[scenario]
    overall = result.aggregates.set_index("type").loc[kind]
    assert overall["overall_att"] == pytest.approx(ref["overall_att"].iloc[0], abs=TOL)
    assert overall["overall_se"] == pytest.approx(ref["overall_se"].iloc[0], abs=TOL)
    if kind == "simple":
        return
    levels = result.by_level[result.by_level["type"] == kind]
    merged = ref.merge(levels, left_on="egt", right_on="level", validate="one_to_one")
    assert len(merged) == len(ref) == len(levels)
    np.testing.assert_allclose(merged["att"], merged["att_egt"], atol=TOL, rtol=0)
    np.testing.assert_allclose(merged["se"], merged["se_egt"], atol=TOL, rtol=0)


def test_event_study_is_the_dynamic_aggregation(fitted: dict[str, DidResult]) -> None:
    es = fitted["mpdta_nyt_dr"].event_study
    assert list(es["event_time"]) == [-3, -2, -1, 0, 1, 2, 3]
    assert (es["ci_low"] < es["att"]).all() and (es["att"] < es["ci_high"]).all()


def test_wrapper_prints_nothing(shared_external: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = pd.read_csv(shared_external / "did" / "mpdta.csv")
    callaway_santanna(data, yname="lemp", tname="year", idname="countyreal", gname="first.treat")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
