"""`--format table|json|csv`: JSON validates against the documented schemas, tables never cut."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from trialvault.cli import app, load_all
from trialvault.output import trialvault_listings

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = REPO / "docs" / "json-schemas"
runner = CliRunner()


def _schema(name: str) -> dict:  # type: ignore[type-arg]
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema  # type: ignore[no-any-return]


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        _schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_check_json_follows_its_schema() -> None:
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    _validator("check").validate(document)
    assert document["study_id"] == "nwd" and len(document["local_authorities"]) == 5


def test_the_check_schema_refuses_a_wrong_document() -> None:
    """The schema can fail: a document with a wrong type or a stray key is refused."""
    document = json.loads(runner.invoke(app, ["check", "--format", "json"]).stdout)
    validator = _validator("check")
    for broken in ({**document, "fields": "52"}, {**document, "extra": 1},
                   {k: v for k, v in document.items() if k != "sha256"},
                   {**document, "deletion_due": "1 September 2033"}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


def test_json_and_format_must_agree() -> None:
    result = runner.invoke(app, ["check", "--json", "--format", "csv"])
    assert result.exit_code == 2 and "disagree" in result.output


def test_notes_go_to_stderr_so_json_stays_parseable() -> None:
    result = runner.invoke(app, ["check", "--json"])
    json.loads(result.stdout)
    assert "note: the rollout schedule is marked illustrative" in result.stderr


def test_every_listing_has_its_schema_file() -> None:
    """Each `Listing` of every command has docs/json-schemas/<name>.schema.json equal to the
    schema its columns give (run `write_schemas`, see docs/cli.md, after changing columns)."""
    load_all()
    for name, listing in trialvault_listings().items():
        path = SCHEMAS / f"{name}.schema.json"
        assert path.is_file(), f"listing {name}: no {path.relative_to(REPO)}"
        assert json.loads(path.read_text(encoding="utf-8")) == listing.json_schema(), (
            f"{path.relative_to(REPO)} differs from listing {name}'s columns")


def test_docs_cli_names_every_schema_file() -> None:
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for path in SCHEMAS.glob("*.schema.json"):
        assert f"json-schemas/{path.name}" in text, f"docs/cli.md does not name {path.name}"
