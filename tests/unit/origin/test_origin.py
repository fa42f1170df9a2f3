"""What a package records as its data's origin (the report's SYNTHETIC banner depends on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialvault.errors import PolicyRefusal
from trialvault.origin import MARKER, package_origin, synthetic_source, write_marker


def _returns(root: Path) -> tuple[Path, Path]:
    folder = root / "354" / "ssda903" / "2024"
    folder.mkdir(parents=True)
    xml = root / "354" / "cin_census" / "2024.xml"
    xml.parent.mkdir(parents=True)
    xml.write_text("<Message/>", encoding="utf-8")
    return folder, xml


def test_files_under_a_synth_marker_are_synthetic_whatever_is_declared(tmp_path: Path) -> None:
    folder, xml = _returns(tmp_path)
    write_marker(tmp_path / "354")
    assert synthetic_source([None, xml]) == (tmp_path / "354" / MARKER).resolve()
    assert package_origin(None, [folder, xml]) == "synthetic"
    assert package_origin("synthetic", [folder]) == "synthetic"
    with pytest.raises(PolicyRefusal, match="--origin real refused"):
        package_origin("real", [xml])


def test_unmarked_files_record_what_the_la_declares_or_unknown(tmp_path: Path) -> None:
    folder, xml = _returns(tmp_path)
    assert synthetic_source([folder, xml]) is None
    assert package_origin(None, [folder, xml]) == "unknown"
    assert package_origin("real", [folder, xml]) == "real"
    with pytest.raises(PolicyRefusal, match="one of synthetic, real, unknown"):
        package_origin("genuine", [folder])
