"""The main job: `trialvault demo` walks every stage and ends with an approved release."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from trialvault.cli import app
from trialvault.demo import DemoRun
from trialvault.vault import audit
from trialvault.vault.session import open_vault


def test_demo_runs_every_stage_and_releases_only_checked_files(
        demo_run: DemoRun, demo_credentials: dict[str, str]) -> None:
    run = demo_run
    assert [s.split(":")[0].split(" ")[0] for s in run.steps] == [
        "documents", "synth", "vault", "LA", "prepare", "prepare", "prepare", "prepare",
        "prepare", "LA", "ingest", "rights", "evaluate", "release"]
    report = run.artefacts["report.html"]
    assert report.is_file() and "<img" in report.read_text(encoding="utf-8")
    # Every package says its data are synthetic (synth's marker), so the banner says so
    # without the "origin not recorded" caveat.
    text = report.read_text(encoding="utf-8")
    assert "SYNTHETIC DATA" in text and "do not record the data" not in text

    release = report.parent
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    listed = {f["path"] if isinstance(f, dict) else f for f in manifest["files"]}
    on_disk = {p.relative_to(release).as_posix() for p in release.rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    assert on_disk == listed
    for entry in manifest["files"]:
        path = release / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]

    # No child code of the synthetic returns appears anywhere in the release.
    truth = json.loads(run.artefacts["truth.json"].read_text(encoding="utf-8"))
    codes = {str(f["child"]) for f in truth["faults"] if f.get("child")}
    assert codes
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace")
                     for p in release.rglob("*") if p.is_file())
    leaked = [c for c in codes if re.search(rf"\b{re.escape(c)}\b", text)]
    assert not leaked

    with open_vault(run.folder / "vault", "dpo", demo_credentials["dpo"], command="test",
                    args={}, write=False) as vault:
        commands = {e.command for e in audit.read_entries(vault.con)}
        assert audit.verify(vault.con, run.folder / "vault", vault_id=vault.vault_id,
                            running=vault.begin_entry.seq if vault.begin_entry else None).ok
    assert {"ingest", "rights execute", "evaluate", "release request", "release review",
            "release write"} <= commands


def test_demo_refuses_an_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d")])
    assert result.exit_code == 6 and "already exists" in result.output
