"""`trialvault design …` end to end through the CLI: power (--json, a CSV design, refusals),
and the whole randomisation: commit (audited in a real vault), reveal, record, verify."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialvault.cli import app
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import audit_entries, init_vault

REPO = Path(__file__).resolve().parents[3]
NWD = REPO / "studies" / "no-wrong-door.toml"
runner = CliRunner()
PASSWORD = "the design test passphrase"


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def test_power_json_has_the_documented_keys() -> None:
    code, out, _ = _run("design", "power", "--study", str(NWD), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"power", "mdes", "variance", "design_effect", "method"}
    assert doc["power"] == 0.8 and 0.02 < doc["mdes"] < 0.035 and doc["design_effect"] > 1
    code, out, _ = _run("design", "power", "--study", str(NWD), "--effect", "-0.03", "--icc",
                        "0.01", "--cac", "1", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["mdes"] is None and 0.9 < doc["power"] < 1
    assert "Hussey & Hughes" in doc["method"]


def test_power_from_a_csv_design(tmp_path: Path) -> None:
    csv = tmp_path / "sw.csv"
    csv.write_text("0,1,1,1,1\n0,0,1,1,1\n0,0,0,1,1\n0,0,0,0,1\n", encoding="utf-8")
    code, out, err = _run("design", "power", "--study", str(NWD), "--design-matrix", str(csv),
                          "--per-cluster-period", "200", "--icc", "0.02", "--cac", "0.8",
                          "--correlation", "exponential_decay", "--baseline", "0.2")
    assert code == 0, err
    assert "4 clusters × 5 periods" in out and "exponential decay" in out and "MDES" in out
    code, _, err = _run("design", "power", "--study", str(NWD), "--design-matrix", str(csv),
                        "--icc", "0.02")
    assert code == 2 and "--per-cluster-period" in err


@pytest.mark.parametrize("args,code,words", [
    (("--icc", "1"), 2, "ICC 1.0: must be in [0, 1)"),
    (("--icc", "-0.2"), 2, "ICC -0.2"),
    (("--outcome", "nope"), 2, "--outcome nope: not an outcome"),
    (("--outcome", "placement_moves_12m"), 2, "give --sd"),
])
def test_power_refusals(args: tuple[str, ...], code: int, words: str) -> None:
    got, _, err = _run("design", "power", "--study", str(NWD), *args)
    assert got == code and words in err, err


def test_a_bad_design_matrix_names_file_line_and_row(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("0,1,1\n0,1,0\n", encoding="utf-8")
    code, _, err = _run("design", "power", "--study", str(NWD), "--design-matrix", str(csv),
                        "--per-cluster-period", "10")
    assert code == 3
    assert f"{csv}, line 2, rule D2" in err and "row 2: exposure goes from 1 back to 0" in err


def _set_randomisation(study: Path, **values: str) -> None:
    text = study.read_text(encoding="utf-8")
    lines = "".join(f"{k} = {v}\n" for k, v in values.items())
    text = text.replace("constraints = []\n", "constraints = []\n" + lines, 1)
    study.write_text(text, encoding="utf-8")


def test_commit_reveal_record_verify(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(NWD.read_text(encoding="utf-8"), encoding="utf-8")
    vault = tmp_path / "vault"
    init_vault(vault, "dm", PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    env = {"TRIALVAULT_PASSWORD": PASSWORD, "TRIALVAULT_USER": "dm"}
    private = tmp_path / "seed.json"
    code, out, err = _run("design", "randomise", "--study", str(study), "--commit",
                          "--vault", str(vault), "--out", str(private), env=env)
    assert code == 0, err
    fields = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert re.fullmatch(r"[0-9a-f]{64}", fields["commitment"])
    assert json.loads(private.read_text())["seed"] == fields["seed"]
    assert private.stat().st_mode & 0o077 == 0
    # the audit log has the commitment and never the seed
    entries = audit_entries(vault, "dm", PASSWORD)
    logged = json.dumps([e.__dict__ for e in entries], default=str)
    assert fields["commitment"] in logged and fields["seed"] not in logged
    assert "design randomise --commit" in logged

    committed_at = dt.datetime.fromisoformat(fields["committed_at"].replace("Z", "+00:00"))
    _set_randomisation(study, commitment=f'"{fields["commitment"]}"',
                       committed_at=fields["committed_at"])
    early = (committed_at - dt.timedelta(hours=1)).isoformat()
    code, _, err = _run("design", "randomise", "--study", str(study), "--reveal",
                        fields["seed"], "--beacon", "7 12 23", "--beacon-at", early)
    assert code == 6 and "not after the commitment" in err
    code, _, err = _run("design", "randomise", "--study", str(study), "--reveal", "ab" * 32,
                        "--beacon", "7 12 23", "--beacon-at", "2099-01-01")
    assert code == 5 and "does not match the commitment" in err

    later = (committed_at + dt.timedelta(days=6)).isoformat()
    code, out, err = _run("design", "randomise", "--study", str(study), "--reveal",
                          fields["seed"], "--beacon", "7 12 23 31 44 58", "--beacon-at", later)
    assert code == 0, err
    order = [int(x) for x in re.search(r"order: ([\d → ]+) \(", out).group(1).split(" → ")]  # type: ignore[union-attr]
    assert sorted(order) == [354, 807, 856, 877, 926]
    snippet = out.split("# paste into [design.randomisation]:\n", 1)[1]
    values = dict(re.findall(r"^(seed|beacon|beacon_at|rejected_draws) = (.+)$", snippet, re.M))
    _set_randomisation(study, **values)
    # the schedule as drawn: each LA gets the date its position in the order gives it
    text = study.read_text(encoding="utf-8")
    for la, day in re.findall(r"la = (\d+)\nstep_date = (\S+)", snippet):
        text = re.sub(rf"(\[\[design\.rollout\]\]\nla = {la}\nstep_date = )\S+",
                      rf"\g<1>{day}", text)
    study.write_text(text, encoding="utf-8")
    code, out, err = _run("design", "verify", "--study", str(study))
    assert code == 0, out + err
    assert out.count("ok  ") == 4

    tampered = tmp_path / "tampered.toml"
    first, second = order[0], order[1]
    text = study.read_text(encoding="utf-8")
    d1 = re.search(rf"la = {first}\nstep_date = (\S+)", text).group(1)  # type: ignore[union-attr]
    d2 = re.search(rf"la = {second}\nstep_date = (\S+)", text).group(1)  # type: ignore[union-attr]
    text = text.replace(f"la = {first}\nstep_date = {d1}", f"la = {first}\nstep_date = X")
    text = text.replace(f"la = {second}\nstep_date = {d2}", f"la = {second}\nstep_date = {d1}")
    tampered.write_text(text.replace("step_date = X", f"step_date = {d2}"), encoding="utf-8")
    code, out, err = _run("design", "verify", "--study", str(tampered))
    assert code == 5 and "FAIL rollout equals the derived order" in out
    assert "does not verify" in err


def test_verify_says_when_nothing_is_recorded() -> None:
    code, _, err = _run("design", "verify", "--study", str(NWD))
    assert code == 2 and "nothing to verify" in err
