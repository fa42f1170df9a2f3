"""`trialvault release ...` from the command line: request, a refused self-approval (exit 6),
approval by a different user with their own password, list, show, write."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
import typer
from referencing import Registry, Resource
from typer.testing import CliRunner

from trialvault.disclose import commands
from trialvault.errors import AccessDenied, PolicyRefusal
from trialvault.study import load_study
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import add_user, init_vault

REPO = Path(__file__).resolve().parents[3]
NWD = REPO / "studies" / "no-wrong-door.toml"
KEEP = ("entered_care_12m", "cp_plan_12m")


def _setup() -> ModuleType:
    name = "disclose_setup_vault"
    if name not in sys.modules:
        path = REPO / "tests" / "integration" / "disclose" / "setup_vault.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """(test shell: only the disclose stage's commands)"""

    commands.register(app)
    return app


def trimmed_study_file(folder: Path) -> Path:
    """The NWD study file with two outcomes and 49 bootstrap draws (a quick evaluation)."""
    text = NWD.read_text(encoding="utf-8")
    pattern = r'\[\[analysis\.outcomes\]\]\nid = "(?!{})[^"]+"\n(?:.+\n)*\n'.format(
        "|".join(KEEP))
    text = re.sub(pattern, "", text).replace("wild_bootstrap_draws = 999",
                                             "wild_bootstrap_draws = 49")
    path = folder / "study.toml"
    path.write_text(text, encoding="utf-8")
    assert [o.id for o in load_study(path).analysis.outcomes] == list(KEEP)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from trialvault.evaluate import evaluate_vault

    folder = tmp_path_factory.mktemp("cli")
    study_path = trimmed_study_file(folder)
    vault = folder / "vault"
    dm_pw = "dm keeps the vault keys safe"
    init_vault(vault, "dm", dm_pw, kdf_params=FAST_TEST_KDF, study_id="nwd")
    add_user(vault, "dm", dm_pw, "ana", "ana reads the trial data", role="analyst",
             kdf_params=FAST_TEST_KDF)
    add_user(vault, "dm", dm_pw, "olu", "olu checks every output", role="output-checker",
             kdf_params=FAST_TEST_KDF)
    add_user(vault, "dm", dm_pw, "oma", "oma checks every output too", role="output-checker",
             kdf_params=FAST_TEST_KDF)
    s = _setup()
    s.PASSWORDS["dm"] = "dm keeps the vault keys safe"
    s.fill_vault(vault, s.toy_tables(load_study(study_path), seed=3, per_cell=12))
    evaluate_vault(vault, "ana", "ana reads the trial data", study_path)
    return vault, study_path


def run(args: list[str], user: str, password: str) -> tuple[int, str]:
    result = CliRunner().invoke(_app(), args, env={"TRIALVAULT_USER": user,
                                                   "TRIALVAULT_PASSWORD": password})
    return result.exit_code, result.output


def test_a_different_study_file_is_refused(setup: tuple[Path, Path], tmp_path: Path) -> None:
    vault, study = setup
    weak = tmp_path / "weak.toml"
    weak.write_text(study.read_text().replace("threshold = 10", "threshold = 1")
                    .replace("rounding_base = 5", "rounding_base = 1"))
    code, out = run(["release", "request", "--study", str(weak), "--vault", str(vault)],
                    "ana", "ana reads the trial data")
    assert code == PolicyRefusal.exit_code and "differs from the one in force" in out


def test_request_review_write(setup: tuple[Path, Path], tmp_path: Path) -> None:
    vault, study = setup
    code, out = run(["release", "request", "--study", str(study), "--vault", str(vault),
                     "--note", "cli test"], "ana", "ana reads the trial data")
    assert code == 0, out
    rid = re.search(r"REL-\d{8}-[0-9a-f]{8}", out)
    assert rid, out
    release_id = rid.group(0)

    code, out = run(["release", "review", release_id, "--vault", str(vault), "--approve",
                     "--comment", "my own"], "ana", "ana reads the trial data")
    assert code == PolicyRefusal.exit_code and "two-person rule" in out
    code, out = run(["release", "review", release_id, "--vault", str(vault), "--approve",
                     "--comment", "x"], "olu", "ana reads the trial data")
    assert code == AccessDenied.exit_code
    code, out = run(["release", "review", release_id, "--vault", str(vault), "--approve",
                     "--reject", "--comment", "x"], "olu", "olu checks every output")
    assert code == PolicyRefusal.exit_code and "exactly one" in out
    code, out = run(["release", "write", release_id, "--vault", str(vault), "--out",
                     str(tmp_path / "early")], "ana", "ana reads the trial data")
    assert code == PolicyRefusal.exit_code and not (tmp_path / "early").exists()

    code, out = run(["release", "review", release_id, "--vault", str(vault), "--approve",
                     "--comment", "tables and figures checked"], "olu", "olu checks every output")
    assert code == 0 and "pending" in out, out  # two approvals are required
    code, out = run(["release", "verify", release_id, "--vault", str(vault)], "olu",
                    "olu checks every output")
    assert code == PolicyRefusal.exit_code and "1 valid approval" in out
    code, out = run(["release", "review", release_id, "--vault", str(vault), "--approve",
                     "--comment", "second check"], "oma", "oma checks every output too")
    assert code == 0 and "approved" in out, out
    code, out = run(["release", "verify", release_id, "--vault", str(vault)], "ana",
                    "ana reads the trial data")
    assert code == 0 and "2 approval(s) verify" in out, out
    code, out = run(["release", "list", "--vault", str(vault)], "olu", "olu checks every output")
    assert code == 0 and release_id in out and "approved" in out
    code, out = run(["release", "show", release_id, "--vault", str(vault)], "olu", "olu checks every output")
    assert code == 0 and "Checking report" in out and "`cohort`" in out
    assert "True value" in out  # the reviewers' report (it never leaves the vault)
    code, out = run(["release", "show", release_id, "--vault", str(vault), "--public"], "olu",
                    "olu checks every output")
    assert code == 0 and "Disclosure control" in out and "True value" not in out
    target = tmp_path / "release"
    code, out = run(["release", "write", release_id, "--vault", str(vault), "--out",
                     str(target)], "ana", "ana reads the trial data")
    assert code == 0, out
    assert (target / "report.html").exists() and (target / "manifest.json").exists()
    assert not list(target.rglob("checking-report*"))
    code, out = run(["release", "write", release_id, "--vault", str(vault), "--out",
                     str(target)], "ana", "ana reads the trial data")
    assert code == PolicyRefusal.exit_code and "not empty" in out


def _validator(name: str) -> jsonschema.Draft202012Validator:
    """The schema docs/json-schemas/<name>.schema.json, with every other schema of the folder
    in the registry (report schemas `$ref` the listing schemas by their `$id`)."""
    folder = REPO / "docs" / "json-schemas"
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.schema.json")]
    registry: Registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas)
    schema = json.loads((folder / f"{name}.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_runs_short_ids_and_the_return_resubmit_loop(setup: tuple[Path, Path]) -> None:
    """`runs list` (schema), a run and a release named by a short prefix, a return whose
    comment the requester reads in `release list` and when resubmitting, one resubmission
    only, `release show` ending with the outputs as released, and `--reject` asking first."""
    vault, _ = setup
    ana, olu = ("ana", "ana reads the trial data"), ("olu", "olu checks every output")
    v = ["--vault", str(vault)]
    code, out = run(["runs", "list", *v, "--json"], *ana)
    assert code == 0, out
    runs = json.loads(out)
    _validator("runs-list").validate(runs)
    assert len(runs) == 1 and runs[0]["run_id"].startswith(runs[0]["run"])
    code, out = run(["release", "request", *v, "--run", "zzzz"], *ana)
    assert code == 8 and "runs list" in out
    code, out = run(["release", "request", *v, "--run", runs[0]["run"], "--note", "first"], *ana)
    assert code == 0 and f"run {runs[0]['run']}" in out, out
    first = re.search(r"REL-\d{8}-([0-9a-f]{8})", out)
    assert first
    short = first.group(1)[:4]

    comment = "add the denominators to the cohort table"
    code, out = run(["release", "review", short, *v, "--return", "--comment", comment], *olu)
    assert code == 0 and "returned" in out and f"--resubmit {first.group(0)}" in out, out
    code, out = run(["release", "list", *v, "--json"], *ana)
    listed = json.loads(out)
    _validator("release-list").validate(listed)
    mine = next(r for r in listed if r["release"] == first.group(0))
    assert mine["status"] == "returned" and comment in mine["comment"]

    code, out = run(["release", "request", *v, "--resubmit", short, "--note",
                     "denominators added"], *ana)
    assert code == 0 and comment in out and f"resubmits {first.group(0)}" in out, out
    second = re.findall(r"REL-\d{8}-[0-9a-f]{8}", out)[-1]
    code, out = run(["release", "request", *v, "--resubmit", short], *ana)
    assert code == PolicyRefusal.exit_code and "already resubmitted" in out

    code, out = run(["release", "show", second, *v, "--json"], *olu)
    assert code == 0, out
    shown = json.loads(out)
    _validator("release-show").validate(shown)
    assert shown["release"]["resubmits"] == first.group(0)
    code, out = run(["release", "show", second[-8:], *v], *olu)
    assert code == 0 and "## Outputs as released" in out and "### `cohort`" in out

    code, out = run(["release", "review", second, *v, "--reject", "--comment", "no"], *olu)
    assert code == PolicyRefusal.exit_code and "--yes" in out  # not at a terminal
    code, out = run(["release", "review", second, *v, "--reject", "--comment", "no",
                     "--dry-run"], *olu)
    assert code == 0 and "would record: reject" in out
    code, out = run(["release", "list", *v, "--json"], *olu)
    assert next(r for r in json.loads(out) if r["release"] == second)["status"] == "pending"
    code, out = run(["release", "show", "REL-", *v], *olu)
    assert code == 2 and "give more characters" in out  # ambiguous: never a guess
