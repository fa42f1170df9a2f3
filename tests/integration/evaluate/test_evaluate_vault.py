"""evaluate_vault on a real encrypted vault: results stored with provenance, audited, rights
exclusions honoured, role checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from trialvault.errors import AccessDenied
from trialvault.evaluate.run import evaluate_vault
from trialvault.rights.flags import FLAGS_TABLE, ensure_flags_table
from trialvault.study import load_study
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import add_user, audit_entries, init_vault, open_vault

DM_PW = "dm keeps the vault keys safe"

NWD = Path(__file__).resolve().parents[3] / "studies" / "no-wrong-door.toml"


def fill_vault(vault: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Test set-up: put harmonised rows straight into the vault (ingest has its own tests)."""
    with open_vault(vault, "dm", DM_PW, command="test-fill", args={}) as s:
        for table, frame in tables.items():
            s.con.register("incoming", frame)
            cols = ", ".join(frame.columns)
            s.con.execute(f"INSERT INTO harmonised.{table} ({cols}) SELECT {cols} FROM incoming")
            s.con.unregister("incoming")


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory,
          toy_tables_factory: Callable[..., dict[str, pd.DataFrame]]) -> Path:
    path = tmp_path_factory.mktemp("eval") / "vault"
    init_vault(path, "dm", DM_PW, kdf_params=FAST_TEST_KDF, study_id="nwd")
    add_user(path, "dm", DM_PW, "ana", "ana reads the trial data", role="analyst", kdf_params=FAST_TEST_KDF)
    add_user(path, "dm", DM_PW, "oc", "oc checks every output", role="output-checker",
             kdf_params=FAST_TEST_KDF)
    fill_vault(path, toy_tables_factory(load_study(NWD), 3, per_cell=8, effect=0.1))
    with open_vault(path, "dm", DM_PW, command="test-flag", args={}) as s:
        ensure_flags_table(s.con)
        first = s.con.execute("SELECT la_code, child_id FROM harmonised.referrals "
                              "ORDER BY la_code, child_id LIMIT 2").fetchall()
        s.con.executemany(f"INSERT INTO {FLAGS_TABLE} (flag_id, la_code, child_id, kind, "
                          "status, set_at, set_by) VALUES (?, ?, ?, 'restriction', 'active', "
                          "now(), 'dpo')", [[i, la, c] for i, (la, c) in enumerate(first)])
    return path


def test_results_and_provenance_are_stored_in_the_vault(vault: Path) -> None:
    res = evaluate_vault(vault, "ana", "ana reads the trial data", NWD)
    assert res.excluded_children == 2
    assert res.cohort_size == 5 * 24 * 8 - 2
    prov = res.provenance
    assert prov["study_file"] == "no-wrong-door.toml" and len(prov["study_sha256"]) == 64
    assert prov["audit_head_seq"] >= 1 and prov["seed"] == 20200918
    with open_vault(vault, "ana", "ana reads the trial data", command="test-read", args={}, write=False) as s:
        runs = s.con.execute("SELECT run_id, seed, cohort_size, excluded_children, provenance "
                             "FROM results.runs").fetchall()
        n_est = s.con.execute("SELECT count(*) FROM results.estimates WHERE run_id = ?",
                              [prov["run_id"]]).fetchone()
    assert [(r[0], r[1], r[2], r[3]) for r in runs] == [
        (prov["run_id"], 20200918, res.cohort_size, 2)]
    assert json.loads(runs[0][4])["audit_head_hash"] == prov["audit_head_hash"]
    assert n_est == (len(res.estimates),)
    entry = [e for e in audit_entries(vault, "dm", DM_PW) if e.command == "evaluate"][-1]
    assert entry.result == "ok"
    assert entry.detail["run_id"] == prov["run_id"]
    # The audit entry carries counts, never a child code.
    assert "child_id" not in json.dumps(entry.detail)


def test_an_output_checker_may_not_evaluate(vault: Path) -> None:
    with pytest.raises(AccessDenied, match="analyst or data-manager"):
        evaluate_vault(vault, "oc", "oc checks every output", NWD)
