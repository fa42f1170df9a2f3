"""Erasure that holds everywhere the data lives (issue 15), tried for real.

The residue test builds a vault with every place a child's data can live — two extracts of the
child's LA (kept package files, validation lines naming the child), an access response, a
correction, exports for analysis and storage, a backup, a release that counted the child —
erases the child, restores the backup made before the erasure, closes the "still to destroy"
list, and then scans every table of every domain and every file left (clear bytes, UTF-16,
inside zips and XLSX, Parquet values, age files it can decrypt, DuckDB files it can open with
any key it holds) for the child's code. The scanner is shown to find the code beforehand.

Then every bad input of the issue: each refused with a clear message, and nothing changed.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pyrage
import pytest
from pyrage import x25519
from typer.testing import CliRunner

from trialvault.errors import InputFileError, IntegrityError, PolicyRefusal, TrialvaultError
from trialvault.rights import service as desk
from trialvault.seal import generate_identity, write_package
from trialvault.seal.keys import LaSigningKey
from trialvault.study.model import StudyFile
from trialvault.trust import DOMAINS, FAST_TEST_KDF, Keyring, catalog_file
from trialvault.vault import add_user, evaluator_recipient, ingest_packages, init_vault
from trialvault.vault import backup as bk
from trialvault.vault.admin import evaluator_identity
from trialvault.vault.export import export_parquet
from trialvault.vault.la_keys import trust_la_key
from trialvault.vault.schema import package_columns
from trialvault.vault.session import open_vault
from trialvault.vault.store import connect_file

PW = {"dm": "dm keeps the vault keys safe", "dpo": "dpo protects the data"}
LA = 877
CHILD = "ZQX-ERASE-4471"
OTHERS = [f"KEEP-{i:02d}" for i in range(6)]
TODAY = dt.date(2026, 3, 2)
TYPES = {"INTEGER": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(),
         "BOOLEAN": pa.bool_()}


def _table(name: str, children: list[str], per_child: int, year: int) -> pa.Table:
    cols = package_columns(name)
    rows: dict[str, list[Any]] = {c: [] for c, _ in cols}
    line = 2
    for child in children:
        for k in range(per_child):
            values = {"la_code": LA, "child_id": child, "source_file": f"{name}.csv",
                      "source_line": line, "sex": "M", "ethnicity": "WBRI",
                      "collection_year": year, "age_months": 150 + k,
                      "episode_start_date": dt.date(year - 1, 5, 1 + k),
                      "referral_date": dt.date(year - 1, 6, 1 + k), "placement_type": "K2"}
            for c, kind in cols:
                rows[c].append(values.get(c, {"INTEGER": 0, "VARCHAR": "x",
                                              "DATE": dt.date(year - 1, 5, 1),
                                              "BOOLEAN": False}[kind]))
            line += 1
    return pa.table({c: pa.array(rows[c], type=TYPES[kind]) for c, kind in cols})


def _validation(children: list[str]) -> bytes:
    lines = ["file,year,line,child,rule,severity,format,table"]
    lines += [f"episodes.csv,2025,{i + 2},{c},103,error,ssda903,episodes"
              for i, c in enumerate(children)]
    lines.append("episodes.csv,2025,40,,101,warning,ssda903,episodes")
    return ("\n".join(lines) + "\n").encode()


# The LA's signing key, trusted by every vault of this module (ingest refuses unsigned packages).
LA_KEY = LaSigningKey.generate(LA)


def _package(folder: Path, recipient: str, extract: str, year: int, name: str) -> Path:
    kids = [CHILD, *OTHERS]
    path = folder / name
    write_package(path, [recipient], {"study_id": "nwd", "spec_version": "2025.1",
                                      "la_code": LA, "extract_date": extract},
                  {"children": _table("children", kids, 1, year),
                   "referrals": _table("referrals", kids, 2, year),
                   "cla_episodes": _table("cla_episodes", kids, 2, year)},
                  _validation([CHILD, OTHERS[0], CHILD]), sign_key=LA_KEY)
    return path


@pytest.fixture()
def world(tmp_path: Path, nwd_study: StudyFile) -> dict[str, Any]:
    vault = tmp_path / "vault"
    init_vault(vault, "dm", PW["dm"], kdf_params=FAST_TEST_KDF, study_id="nwd")
    add_user(vault, "dm", PW["dm"], "dpo", PW["dpo"], "dpo", kdf_params=FAST_TEST_KDF)
    trust_la_key(vault, "dm", PW["dm"], LA, LA_KEY.public.line(), study=nwd_study)
    recipient = evaluator_recipient(vault)
    pkgs = tmp_path / "packages"
    pkgs.mkdir()
    paths = [_package(pkgs, recipient, "2025-04-01", 2025, "la877-a.tvpkg"),
             _package(pkgs, recipient, "2025-10-01", 2025, "la877-b.tvpkg")]
    ingest_packages(vault, "dm", PW["dm"], paths, study=nwd_study)
    return {"root": tmp_path, "vault": vault, "packages": pkgs,
            "dm": desk.Vault(vault, "dm", PW["dm"]), "dpo": desk.Vault(vault, "dpo", PW["dpo"])}


def _request(v: desk.Vault, study: StudyFile, kind: str, child: str = CHILD) -> int:
    return desk.new_request(v, study, type=kind, la_code=LA, child_id=child,
                            received=TODAY - dt.timedelta(days=3), channel="email",
                            note=f"phoned by the carer of {child}", today=TODAY)


# --- the scanner ----------------------------------------------------------------------------

NEEDLES = (CHILD.encode(), CHILD.encode("utf-16-le"))


def _hits_in_bytes(data: bytes, where: str, identities: list[str], depth: int = 0
                   ) -> list[str]:
    hits = [where] if any(n in data for n in NEEDLES) else []
    if depth > 3:
        return hits
    if data.startswith(b"age-encryption.org"):
        for identity in identities:
            try:
                plain = pyrage.decrypt(data, [x25519.Identity.from_str(identity)])
            except Exception:
                continue
            hits += _hits_in_bytes(plain, f"{where} (decrypted)", identities, depth + 1)
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for member in zf.namelist():
                hits += _hits_in_bytes(zf.read(member), f"{where}:{member}", identities,
                                       depth + 1)
    if data[:4] == b"PAR1":
        try:
            table = pq.read_table(io.BytesIO(data))
        except OSError:  # encrypted Parquet without its keys: not readable
            table = None
        if table is not None and CHILD in str(table.to_pylist()):
            hits.append(f"{where} (Parquet values)")
    return hits


def _hits_in_duckdb(path: Path, keys: list[bytes], tmp: Path, label: str = "") -> list[str]:
    hits = []
    for i, key in enumerate(keys):
        try:
            con = connect_file(path, key, temp_dir=tmp / f"scan-{path.name}-{i}", alias="x")
        except TrialvaultError:
            continue
        try:
            hits += [f"{label or path.name}:{h}" for h in _hits_in_catalogs(con)]
        finally:
            con.close()
    return hits


def _hits_in_catalogs(con: duckdb.DuckDBPyConnection) -> list[str]:
    hits = []
    tables = con.execute("SELECT database_name, schema_name, table_name FROM duckdb_tables() "
                         "WHERE database_name NOT IN ('system', 'temp')").fetchall()
    for catalog, schema, table in tables:
        rel = con.execute(f'SELECT * FROM "{catalog}"."{schema}"."{table}"')
        for row in rel.fetchall():
            for cell in row:
                data = bytes(cell) if isinstance(cell, bytes | bytearray | memoryview) \
                    else str(cell).encode()
                if any(n in data for n in NEEDLES):
                    hits.append(f"{catalog}.{schema}.{table}")
    return sorted(set(hits))


def scan(root: Path, vault: Path, identities: list[str]) -> list[str]:
    """Every place under `root` where the child's code can be read."""
    held = Keyring.load(vault).unlock("dm", PW["dm"]).domain_keys
    by_file = {catalog_file(c): held[d.name] for d in DOMAINS.values() for c in d.catalogs}
    hits: list[str] = []
    with open_vault(vault, "dm", PW["dm"], command="scan", args={}, write=False) as s:
        hits += [f"live {h}" for h in _hits_in_catalogs(s.con)]
    tmp = root / ".scan"
    for path in sorted(root.rglob("*")):
        if not path.is_file() or ".scan" in path.parts:
            continue
        data = path.read_bytes()
        hits += _hits_in_bytes(data, str(path.relative_to(root)), identities)
        if path.name.endswith(".duckdb"):
            # A live file with its domain's key; any other copy with every key held.
            keys = [by_file[path.name]] if path.parent == vault and path.name in by_file \
                else list(held.values())
            hits += _hits_in_duckdb(path, keys, tmp, str(path.relative_to(root)))
    return hits


# --- the residue test -----------------------------------------------------------------------

def test_nothing_readable_is_left_after_erasure(world: dict[str, Any],
                                                nwd_study: StudyFile) -> None:
    root, vault, _dm, dpo = world["root"], world["vault"], world["dm"], world["dpo"]
    with open_vault(vault, "dm", PW["dm"], command="t", args={}, write=False) as s:
        identities = [evaluator_identity(s.con)]
    reader_identity, reader = generate_identity()
    identities.append(reader_identity)
    # Every place the child's data can live.
    access = _request(dpo, nwd_study, "access")
    desk.execute(dpo, nwd_study, access, today=TODAY, recipient=reader,
                 out_dir=root / "responses")
    rect = _request(dpo, nwd_study, "rectification")
    desk.execute(dpo, nwd_study, rect, today=TODAY, rectification=desk.Rectification(
        "children", "ethnicity", "WIRI", "The person gave the right ethnicity code."))
    other = _request(dpo, nwd_study, "objection")  # stays open: closed by the erasure
    with open_vault(vault, "dm", PW["dm"], command="export", args={}) as s:
        analysis = export_parquet(s, root / "exports" / "analysis")
    with open_vault(vault, "dm", PW["dm"], command="export", args={}) as s:
        storage = export_parquet(s, root / "exports" / "storage", purpose="storage")
    with open_vault(vault, "dm", PW["dm"], command="release", args={}) as s:
        s.con.execute("CREATE TABLE IF NOT EXISTS meta.release_children (release_id VARCHAR, "
                      "la_code INTEGER, child_id VARCHAR)")
        s.con.execute("INSERT INTO meta.release_children VALUES ('rel-1', ?, ?)", [LA, CHILD])
    old = bk.backup(vault, "dm", PW["dm"], root / "backups" / "before")

    before = scan(root, vault, identities)
    # The scanner finds the code where it is: tables, packages (decrypted), the backup.
    assert any(h.startswith("live vault.raw.") for h in before)
    assert any("la877-a.tvpkg (decrypted)" in h for h in before)
    assert any(h.startswith("responses/") for h in before)
    assert any("backups/before/child.duckdb" in h for h in before) is False  # its own keys
    assert any("vault/child.duckdb" in h for h in before)

    erasure = _request(dpo, nwd_study, "erasure")
    plan = desk.erasure_preview(dpo, erasure)
    places = {(a.kind, a.place): a.count for a in plan.actions}
    assert places[("table", "raw.children")] == 2  # one per extract
    assert places[("table", "raw.cla_episodes")] == 4
    assert plan.records == 2 + 4 + 4
    assert sum(a.count for a in plan.actions if a.kind == "validation") == 4
    assert sorted(a.kind for a in plan.actions if a.ref and a.kind in
                  ("package", "access_response", "export", "backup")) == [
        "access_response", "backup", "export", "export", "package", "package"]
    report = desk.execute(dpo, nwd_study, erasure, today=TODAY)
    assert report.state == "completed" and report.rekey is not None
    assert {"child", "register", "outputs", "audit"} <= set(report.rekey.domains)

    # The other open request was closed with its own letter.
    letter = desk.outcome_letter(dpo, nwd_study, other, today=TODAY)
    assert "About your other request" in letter and "nothing left for us" in letter
    # Kept files holding the child were destroyed; exports and the backup are to destroy.
    assert not list(world["packages"].glob("*.tvpkg"))
    assert not list((root / "responses").iterdir())
    todo = {a.artefact_id for a in desk.artefacts(dpo, to_destroy_only=True)}
    assert todo == {analysis.export_id, storage.export_id, old.backup_id}

    # The backup made before the erasure is restored: the child is erased again first.
    restored = bk.restore(vault, "dm", PW["dm"], root / "backups" / "before")
    assert restored.erased_children == 1 and restored.erased_rows >= 10
    assert restored.packages_since == []
    assert scan(root / "vault", vault, identities) == []
    with open_vault(vault, "dm", PW["dm"], command="t", args={}, write=False) as s:
        kept = s.con.execute("SELECT count(DISTINCT child_id) FROM harmonised.children"
                             ).fetchone()
    assert kept == (len(OTHERS),)

    # The DPO closes the list: the tool destroys what it can reach.
    for artefact in sorted(todo):
        assert desk.destroy(dpo, artefact).state == "destroyed"
    assert desk.artefacts(dpo, to_destroy_only=True) == []
    assert scan(root, vault, identities) == []


# --- bad inputs: a clear error, nothing changed ---------------------------------------------

def _fingerprints(vault: Path) -> dict[str, str]:
    return Keyring.load(vault).domain_fingerprints()


def test_erasure_of_a_code_that_matches_nobody_is_refused(world: dict[str, Any],
                                                         nwd_study: StudyFile) -> None:
    dpo = world["dpo"]
    rid = _request(dpo, nwd_study, "erasure", child="NOBODY-HERE")
    keys = _fingerprints(world["vault"])
    with pytest.raises(PolicyRefusal, match="nothing is held about this child"):
        desk.execute(dpo, nwd_study, rid, today=TODAY)
    assert _fingerprints(world["vault"]) == keys  # no re-key
    assert desk.show_request(dpo, rid, today=TODAY).view.state == "received"


def test_an_interrupted_erasure_is_never_reported_done_and_resumes(
        world: dict[str, Any], nwd_study: StudyFile, monkeypatch: pytest.MonkeyPatch) -> None:
    from trialvault.rights import erasure

    dpo = world["dpo"]
    rid = _request(dpo, nwd_study, "erasure")

    def crash(*_: Any, **__: Any) -> None:
        raise OSError("disk full during the re-key")

    monkeypatch.setattr(erasure, "rekey", crash)
    with pytest.raises(OSError, match="disk full"):
        desk.execute(dpo, nwd_study, rid, today=TODAY)
    view = desk.show_request(dpo, rid, today=TODAY).view
    assert view.state == "erasing" and view.outcome is None
    monkeypatch.undo()
    report = desk.execute(dpo, nwd_study, rid, today=TODAY)  # resumes at the re-key
    assert report.state == "completed" and report.rekey is not None
    assert report.rows_touched["raw.children"] == 2
    with pytest.raises(PolicyRefusal, match="is completed"):
        desk.execute(dpo, nwd_study, rid, today=TODAY)
    # A second erasure in the same vault (the log of the first is there) counts only its own.
    second = _request(dpo, nwd_study, "erasure", child=OTHERS[0])
    assert desk.execute(dpo, nwd_study, second, today=TODAY).rows_touched["raw.children"] == 2


def test_erasure_needs_confirmation_and_dry_run_changes_nothing(world: dict[str, Any],
                                                               nwd_study: StudyFile) -> None:
    from trialvault.cli import app

    rid = _request(world["dpo"], nwd_study, "erasure")
    env = {"TRIALVAULT_VAULT": str(world["vault"]), "TRIALVAULT_PASSWORD": PW["dpo"],
           "TRIALVAULT_USER": "dpo", "COLUMNS": "200"}
    keys = _fingerprints(world["vault"])
    run = CliRunner().invoke(app, ["rights", "execute", str(rid), "--dry-run"], env=env)
    assert run.exit_code == 0 and "raw.cla_episodes" in run.output and CHILD not in run.output
    run = CliRunner().invoke(app, ["rights", "execute", str(rid)], env=env)
    assert run.exit_code == 6 and "typed confirmation" in run.output
    assert _fingerprints(world["vault"]) == keys
    assert desk.show_request(world["dpo"], rid, today=TODAY).view.state == "received"
    run = CliRunner().invoke(app, ["rights", "execute", str(rid), "--yes"], env=env)
    assert run.exit_code == 0 and "completed" in run.output and CHILD not in run.output


def test_register_hygiene(world: dict[str, Any], nwd_study: StudyFile) -> None:
    dpo = world["dpo"]
    first = _request(dpo, nwd_study, "access")
    _second, duplicate = desk.file_request(dpo, nwd_study, type="access", la_code=LA,
                                          child_id=CHILD, received=TODAY, channel="post",
                                          note=None, today=TODAY)
    assert duplicate == first
    assert desk.list_requests(dpo, today=TODAY)[1].duplicate_of == first
    _, other = desk.file_request(dpo, nwd_study, type="erasure", la_code=LA, child_id=CHILD,
                                 received=TODAY, channel="post", note=None, today=TODAY)
    assert other is None  # another type is not a duplicate
    count = len(desk.list_requests(dpo, today=TODAY))
    with pytest.raises(InputFileError, match="before the study's data period"):
        desk.new_request(dpo, nwd_study, type="access", la_code=LA, child_id=CHILD,
                         received=dt.date(1999, 1, 1), channel="post", note=None, today=TODAY)
    with pytest.raises(InputFileError, match="in the future"):
        desk.new_request(dpo, nwd_study, type="access", la_code=LA, child_id=CHILD,
                         received=TODAY + dt.timedelta(days=1), channel="post", note=None,
                         today=TODAY)
    assert len(desk.list_requests(dpo, today=TODAY)) == count
    desk.new_request(dpo, nwd_study, type="objection", la_code=LA, child_id=CHILD,
                     received=dt.date(2018, 12, 1), channel="post", note=None, today=TODAY,
                     force=True)
    # ID asked after the due date: shown as overdue at the pause.
    late = desk.new_request(dpo, nwd_study, type="restriction", la_code=LA,
                            child_id=OTHERS[1], received=dt.date(2026, 1, 5), channel="post",
                            note=None, today=TODAY)
    view = desk.await_information(dpo, late, "identity", asked=dt.date(2026, 2, 20),
                                  today=TODAY)
    assert view.overdue_at_pause == 15  # due 5 February, asked 20 February


def test_free_text_is_purged_with_the_code(world: dict[str, Any], nwd_study: StudyFile
                                           ) -> None:
    dpo = world["dpo"]
    refused = _request(dpo, nwd_study, "access")
    desk.refuse(dpo, refused, reason=f"The LA says {CHILD} is not in the trial at all.",
                today=TODAY)
    extended = _request(dpo, nwd_study, "restriction")
    desk.extend(dpo, extended, reason=f"Five years of returns to search for {CHILD}.",
                today=TODAY)
    rid = _request(dpo, nwd_study, "erasure")
    desk.execute(dpo, nwd_study, rid, today=TODAY)
    with open_vault(world["vault"], "dm", PW["dm"], command="t", args={}, write=False) as s:
        assert _hits_in_catalogs(s.con) == []
    assert CHILD not in desk.outcome_letter(dpo, nwd_study, refused, today=TODAY)


def test_backup_opens_with_no_password_and_refuses_tampering(world: dict[str, Any],
                                                            nwd_study: StudyFile) -> None:
    root, vault = world["root"], world["vault"]
    made = bk.backup(vault, "dm", PW["dm"], root / "b1")
    # No key slot holds a backup key: neither the user's keys nor the key ring open it.
    keys = list(Keyring.load(vault).unlock("dm", PW["dm"]).domain_keys.values())
    assert _hits_in_duckdb(root / "b1" / catalog_file("vault"), keys, root) == []
    assert not (root / "b1" / "keyslots.json").exists()
    with pytest.raises(PolicyRefusal, match="outside the vault"):
        bk.backup(vault, "dm", PW["dm"], vault / "inside")
    with pytest.raises(InputFileError, match="not empty"):
        bk.backup(vault, "dm", PW["dm"], root / "b1")
    with pytest.raises(TrialvaultError, match="needs role data-manager"):
        bk.restore(vault, "dpo", PW["dpo"], root / "b1")
    # Tampered file, forged manifest, another vault's backup: refused, vault unchanged.
    keys_before = _fingerprints(vault)
    data = root / "b1" / catalog_file("vault")
    original = data.read_bytes()
    data.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(IntegrityError, match="changed since the backup"):
        bk.restore(vault, "dm", PW["dm"], root / "b1")
    data.write_bytes(original)
    manifest = root / "b1" / bk.MANIFEST
    text = manifest.read_text()
    manifest.write_text(text.replace(made.backup_id, "0" * 36))
    with pytest.raises(IntegrityError, match="not signed by a data manager"):
        bk.restore(vault, "dm", PW["dm"], root / "b1")
    manifest.write_text(text)
    other = root / "other"
    init_vault(other, "dm", PW["dm"], kdf_params=FAST_TEST_KDF, study_id="nwd")
    with pytest.raises(IntegrityError):
        bk.restore(other, "dm", PW["dm"], root / "b1")
    assert _fingerprints(vault) == keys_before
    # A package ingested after the backup is not in it: the restore names it.
    later = _package(world["packages"], evaluator_recipient(vault), "2025-12-01", 2025,
                     "la877-c.tvpkg")
    pid = ingest_packages(vault, "dm", PW["dm"], [later], study=nwd_study).ingested[0]
    assert bk.restore(vault, "dm", PW["dm"], root / "b1").packages_since == [pid.package_id]
    # Once recorded destroyed elsewhere, a backup that turns up again is refused.
    with pytest.raises(PolicyRefusal, match="at least"):
        desk.destroy(world["dpo"], made.backup_id, elsewhere="gone")
    desk.destroy(world["dpo"], made.backup_id,
                 elsewhere="Tape 7 overwritten by the backup rotation on 1 March.")
    with pytest.raises(PolicyRefusal, match="recorded as destroyed"):
        bk.restore(vault, "dm", PW["dm"], root / "b1")


def test_exports_leave_out_restricted_children(world: dict[str, Any],
                                               nwd_study: StudyFile) -> None:
    vault, root, dpo = world["vault"], world["root"], world["dpo"]
    with open_vault(vault, "dm", PW["dm"], command="export", args={}) as s, \
            pytest.raises(InputFileError, match="unknown export purpose"):
        export_parquet(s, root / "e", purpose="marketing")
    assert not (root / "e").exists()
    with open_vault(vault, "dm", PW["dm"], command="export", args={}) as s:
        before = export_parquet(s, root / "before")
    rid = _request(dpo, nwd_study, "restriction")
    report = desk.execute(dpo, nwd_study, rid, today=TODAY)
    # The analysis copy made before holds the child: listed to destroy, and the letter says so.
    assert [a.artefact_id for a in desk.artefacts(dpo, to_destroy_only=True)] == [
        before.export_id]
    assert "1 copy of the research data made for analysis" in report.outcome
    with open_vault(vault, "dm", PW["dm"], command="export", args={}) as s:
        after = export_parquet(s, root / "after")
        storage = export_parquet(s, root / "storage", purpose="storage")
        from trialvault.vault.export import read_export, vault_master_keys

        analysis = read_export(root / "after", vault_master_keys(s, after.export_id))
        kept = read_export(root / "storage", vault_master_keys(s, storage.export_id))
    assert CHILD not in analysis["children"]["child_id"].to_pylist()
    assert analysis["rights_flags"].num_rows == 0
    assert CHILD in kept["children"]["child_id"].to_pylist()
    assert kept["rights_flags"]["child_id"].to_pylist() == [CHILD]


def test_domain_files_of_every_domain_are_scanned() -> None:
    """The scanner opens every domain's files (a guard for new domains)."""
    assert {catalog_file(c) for d in DOMAINS.values() for c in d.catalogs} >= {
        "child.duckdb", "rights.duckdb", "results.duckdb", "releases.duckdb", "audit.duckdb"}
