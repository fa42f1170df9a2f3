"""The role guides of docs/guide/ are executed: every `sh` code block, in the order its fence
names (```` ```sh order=N ````), against synthetic data in a fresh folder, through the real CLI.

A guide cannot drift from the tool: a renamed option, a changed default or a command that
now fails breaks this test. The blocks are run by a deliberately small shell: `trialvault …`
lines (with `\\` continuations), `export NAME=VALUE`, `$NAME` and `"$(trialvault …)"`
substitution, `> FILE` redirection and `*` globs; anything else in a block fails the test, so
the guides stay copy-pasteable into bash. A line ending in `# exit N` must exit with N.
Blocks marked `each-la` run once per LA of the study, with the guide's example LA code (354)
replaced by each LA's (every LA does the same steps at its own site).

Passwords never appear in the guides: the test answers as each user would, through
`$TRIALVAULT_PASSWORD` (and `$TRIALVAULT_NEW_PASSWORD`, `$TRIALVAULT_LA_PASSPHRASE`) for the
user a command acts as. After the walkthrough, every `--json` report and listing is run on the
vault the guides built and validated against its schema in docs/json-schemas.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from typer.testing import CliRunner

from trialvault.cli import app
from trialvault.study import load_study
from trialvault.trust import FAST_TEST_KDF

REPO = Path(__file__).resolve().parents[2]
GUIDES = REPO / "docs" / "guide"
SCHEMAS = REPO / "docs" / "json-schemas"
NWD = REPO / "studies" / "no-wrong-door.toml"
EXAMPLE_LA = "354"
KEEP_OUTCOMES = ("entered_care_12m", "cp_plan_12m")

# The people of the guides and the passwords they would type (never written in a guide).
PASSWORDS = {"dana": "dana keeps the vault keys", "ana": "ana reads the trial data",
             "dee": "dee answers every request", "oli": "oli checks every output",
             "ola": "ola checks each output too"}
LA_PASSPHRASE = "the LA keeps its signing key safe"

FENCE = re.compile(r"^```sh( [^\n]*)?\n(.*?)^```", re.M | re.S)
EXIT = re.compile(r"\s+# exit (\d+)$")


@dataclass(frozen=True)
class Block:
    guide: str
    order: int
    each_la: bool
    text: str


def guide_blocks() -> list[Block]:
    blocks = []
    for path in sorted(GUIDES.glob("*.md")):
        for info, text in FENCE.findall(path.read_text(encoding="utf-8")):
            words = dict(w.split("=", 1) if "=" in w else (w, "") for w in info.split())
            assert "order" in words, f"{path.name}: a sh block without order=N:\n{text}"
            blocks.append(Block(path.name, int(words["order"]), "each-la" in words, text))
    return sorted(blocks, key=lambda b: b.order)


def trimmed_study(folder: Path) -> Path:
    """The NWD study with two outcomes and 49 bootstrap draws: the same commands, a quicker
    evaluation (the guides name no study file; $TRIALVAULT_STUDY points here)."""
    text = NWD.read_text(encoding="utf-8")
    pattern = r'\[\[analysis\.outcomes\]\]\nid = "(?!{})[^"]+"\n(?:.+\n)*\n'.format(
        "|".join(KEEP_OUTCOMES))
    text = re.sub(pattern, "", text).replace("wild_bootstrap_draws = 999",
                                             "wild_bootstrap_draws = 49")
    path = folder / "study.toml"
    path.write_text(text, encoding="utf-8")
    assert [o.id for o in load_study(path).analysis.outcomes] == list(KEEP_OUTCOMES)
    return path


class Shell:
    """The small shell the guides are written for (module docstring)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.runner = CliRunner()
        self.log: list[tuple[str, int, float]] = []
        self.stderr: dict[str, str] = {}

    def run_block(self, block: Block) -> None:
        for line in _lines(block.text):
            self.run_line(line, where=f"{block.guide} (order={block.order})")

    def run_line(self, line: str, *, where: str) -> None:
        expect = 0
        found = EXIT.search(line)
        if found:
            expect, line = int(found.group(1)), line[:found.start()]
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), f"{where}: bad export {line!r}"
            words = shlex.split(self.expand(value, where))
            assert len(words) == 1, f"{where}: export of several words: {line!r}"
            self.env[name] = words[0]
            return
        out_file = None
        if " > " in line:
            line, out_file = (part.strip() for part in line.rsplit(" > ", 1))
        words = shlex.split(self.expand(line, where))
        assert words and words[0] == "trialvault", f"{where}: not a trialvault command: {line!r}"
        args = [m for w in words[1:] for m in (sorted(glob.glob(w)) if "*" in w else [w])]
        stdout = self.invoke(args, expect, where)
        if out_file:
            Path(out_file).write_text(stdout, encoding="utf-8")

    def invoke(self, args: list[str], expect: int, where: str) -> str:
        start = time.perf_counter()
        result = self.runner.invoke(app, args, env=self.secrets(args))
        self.log.append((" ".join(["trialvault", *args]), result.exit_code,
                         time.perf_counter() - start))
        self.stderr[self.log[-1][0]] = result.stderr
        assert result.exit_code == expect, (
            f"{where}: `trialvault {' '.join(args)}` exited {result.exit_code}, expected "
            f"{expect}\n{result.output}")
        return result.stdout

    def expand(self, text: str, where: str) -> str:
        def command(m: re.Match[str]) -> str:
            words = shlex.split(self.expand(m.group(1), where))
            assert words[0] == "trialvault", f"{where}: $(…) runs trialvault only"
            return self.invoke(words[1:], 0, where).strip()

        text = re.sub(r"\$\((trialvault [^)]*)\)", command, text)
        return re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", lambda m: self.env[m.group(1)], text)

    def secrets(self, args: list[str]) -> dict[str, str]:
        """The environment with the password of the user the command acts as (as they would
        type it at the prompt)."""
        user = args[args.index("--user") + 1] if "--user" in args else self.env.get(
            "TRIALVAULT_USER")
        env = {**self.env, "TRIALVAULT_LA_PASSPHRASE": LA_PASSPHRASE}
        if user in PASSWORDS:
            env["TRIALVAULT_PASSWORD"] = PASSWORDS[user]
        if args[:2] == ["users", "add"]:
            env["TRIALVAULT_NEW_PASSWORD"] = PASSWORDS[args[2]]
        return env


def _lines(text: str) -> list[str]:
    """Logical lines: `\\` continuations joined, comments and blank lines dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = (pending + line.strip()).strip()
        pending = ""
        if line and not line.startswith("#"):
            out.append(line)
    assert not pending, "a block ends in a `\\` continuation"
    return out


@dataclass
class Walkthrough:
    folder: Path
    shell: Shell


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("guide")
    study_path = trimmed_study(folder)
    la_codes = [str(la.dfe_code) for la in load_study(study_path).local_authorities]
    assert EXAMPLE_LA in la_codes
    shell = Shell({"TRIALVAULT_STUDY": str(study_path), "COLUMNS": "100"})
    before = Path.cwd()
    os.chdir(folder)
    # As in every other vault test, a cheap Argon2id for the users' key slots (the default
    # costs ~0.4 s per unlock, ~40 times here); the LA keys keep theirs.
    patch = pytest.MonkeyPatch()
    patch.setattr("trialvault.vault.admin.DEFAULT_KDF", FAST_TEST_KDF)
    try:
        for block in guide_blocks():
            if block.guide == "dpo.md" and not (folder / "code.txt").exists():
                # The LA's letter names the child; the DPO saves the code it gives to a file
                # (never on the command line). Here: a child the LA sent, picked in the vault.
                (folder / "code.txt").write_text(_a_child(folder, study_path) + "\n")
            for la in la_codes if block.each_la else [EXAMPLE_LA]:
                shell.run_block(Block(block.guide, block.order, False,
                                      block.text.replace(EXAMPLE_LA, la)))
        yield Walkthrough(folder, shell)
    finally:
        patch.undo()
        os.chdir(before)


def _a_child(folder: Path, study_path: Path) -> str:
    from trialvault.demo import _children_for_requests

    return _children_for_requests(load_study(study_path), folder / "vault", "dee",
                                  PASSWORDS["dee"], int(EXAMPLE_LA), 1)[0]


def test_every_role_has_a_guide_that_runs() -> None:
    names = {p.stem for p in GUIDES.glob("*.md")}
    assert {"la-analyst", "data-manager", "dpo", "analyst", "output-checker"} <= names
    for name in ("la-analyst", "data-manager", "dpo", "analyst", "output-checker"):
        assert [b for b in guide_blocks() if b.guide == f"{name}.md"], f"{name}.md: no sh block"


def test_the_guides_walk_every_role_end_to_end(walkthrough: Walkthrough) -> None:
    folder, ran = walkthrough.folder, [c for c, _, _ in walkthrough.shell.log]
    # What each role set out to do was done: the key ceremonies, the LA's sealed packages,
    # an answered access request opened with the data subject's key, a returned and
    # resubmitted release, approved twice and written.
    assert (folder / "la-354.key").stat().st_mode & 0o077 == 0
    assert (folder / "access-key.txt").stat().st_mode & 0o077 == 0
    assert len(list(folder.glob("la-*.tvpkg.receipt.json"))) == 5
    opened = {p.suffix for p in (folder / "my-information").iterdir()}
    assert {".xlsx", ".md"} <= opened
    assert (folder / "release" / "report.html").is_file()
    assert any("--resubmit" in c for c in ran) and any("--return" in c for c in ran)
    # Long steps say what they are doing (on stderr; one line per step when piped).
    for label in ("ingest", "evaluate", "release request", "rights execute", "release write"):
        shown = [e for c, e in walkthrough.shell.stderr.items()
                 if c.startswith(f"trialvault {label}") or f" {label.split()[-1]} " in c]
        assert any(f"progress: {label}: " in e for e in shown), f"no progress from {label}"
    secret = (folder / "code.txt").read_text().strip()
    assert not any(secret in c for c in ran)  # the child's code never on a command line


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.schema.json")]
    registry: Registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas)
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


# Every command with --json, as the user allowed to run it, and the schema of its output.
JSON_COMMANDS = [
    ("status", "dana", ["status", "--json"]),
    ("users-list", None, ["users", "list", "--json"]),
    ("audit-show", "dana", ["audit", "show", "--last", "30", "--json"]),
    ("la-trusted", "dana", ["la", "trusted", "--json"]),
    ("rights-list", "dee", ["rights", "list", "--all", "--json"]),
    ("rights-show", "dee", ["rights", "show", "1", "--json"]),
    ("rights-history", "dee", ["rights", "show", "1", "--format", "json"]),
    ("rights-inventory", "dee", ["rights", "inventory", "--json"]),
    ("rights-deadline", None, ["rights", "deadline", "2026-01-31", "--json"]),
    ("retention-status", "dee", ["retention", "status", "--json"]),
    ("runs-list", "ana", ["runs", "list", "--json"]),
    ("release-list", "oli", ["release", "list", "--json"]),
    ("release-show", "oli", ["release", "show", "$RELEASE", "--json"]),
    ("release-show", "ana", ["release", "show", "$RELEASE", "--public", "--json"]),
    ("check", None, ["check", "--json"]),
    ("audit-verify", "dee", ["audit", "verify", "--json"]),
    ("release-verify", "ana", ["release", "verify", "$RELEASE", "--json"]),
]


@pytest.mark.parametrize(("schema", "user", "args"), JSON_COMMANDS,
                         ids=[" ".join(a[:2]) + (" public" if "--public" in a else "")
                              for _, _, a in JSON_COMMANDS])
def test_json_output_follows_its_schema(walkthrough: Walkthrough, schema: str,
                                        user: str | None, args: list[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    shell = walkthrough.shell
    monkeypatch.chdir(walkthrough.folder)
    args = [shell.expand(a, "json test") for a in args] + (["--user", user] if user else [])
    if schema == "rights-history":
        document = json.loads(shell.invoke(args, 0, "json test"))["history"]
    else:
        document = json.loads(shell.invoke(args, 0, "json test"))
    _validator(schema).validate(document)
    assert document, f"{' '.join(args)}: empty, so the schema was not really exercised"


def test_every_json_schema_is_exercised() -> None:
    """A schema file nobody validates against is a promise nobody checks."""
    used = {s for s, _, _ in JSON_COMMANDS} | {"status-packages", "status-holdings",
                                               "retention-files", "retention-copies",
                                               "rights-plan"}
    assert {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")} <= used


def test_a_failed_verification_still_prints_its_report(walkthrough: Walkthrough,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`release verify --json` of the returned release: the report (ok false, why), then
    exit 6, so a script gets both."""
    shell = walkthrough.shell
    monkeypatch.chdir(walkthrough.folder)
    listed = json.loads(shell.invoke(["release", "list", "--json", "--user", "ana"], 0, "json"))
    returned = next(r["release"] for r in listed if r["status"] == "returned")
    report = json.loads(shell.invoke(["release", "verify", returned.split("-")[-1][:4], "--json", "--user",
                                      "ana"], 6, "json"))
    _validator("release-verify").validate(report)
    assert report["release_id"] == returned and not report["ok"]
    assert report["rejected_by"] == ["oli"] and report["reasons"]
