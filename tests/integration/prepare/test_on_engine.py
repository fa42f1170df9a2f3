"""`prepare --validate-only --engine`: the engine path finds what the default path finds."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from trialvault.cli import app
from trialvault.engines import make_engine
from trialvault.prepare import prepare_la
from trialvault.prepare.on_engine import validate_la_on_engine
from trialvault.study import StudyFile


def test_engine_path_equals_default_path(shared_external: Path, fake_903: Path,
                                         nwd_study: StudyFile, tmp_path: Path) -> None:
    ssda903 = fake_903
    # The fake CIN file is LEA 975's; LA 354's own return says 354.
    text = (shared_external / "cin_census" / "fake_CIN_data.xml").read_text(encoding="utf-8")
    cin = [tmp_path / "fake_CIN_data.xml"]
    cin[0].write_text(text.replace("<LEA>975</LEA>", "<LEA>354</LEA>"), encoding="utf-8")
    default = prepare_la(nwd_study, 354, ssda903=ssda903, cin=cin, validate_only=True,
                         report_dir=tmp_path / "default")
    engine = make_engine("duckdb")
    try:
        result = validate_la_on_engine(engine, nwd_study, 354, ssda903=ssda903, cin=cin,
                                       report_dir=tmp_path / "engine")
    finally:
        engine.close()
    assert result.summary()["issues"] == default.issues["issues"] > 0
    assert result.summary()["by_rule"] == default.issues["by_rule"]
    engine_csv = (tmp_path / "engine" / "validation_issues.csv").read_bytes()
    assert engine_csv == (tmp_path / "default" / "validation_issues.csv").read_bytes()


def test_spark_engine_needs_validate_only(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["prepare", "--la", "354", "--ssda903", str(tmp_path),
                                      "--cin", str(tmp_path / "c.xml"), "--engine", "spark"])
    assert result.exit_code == 6 and "--validate-only" in result.output
