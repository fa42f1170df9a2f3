"""Our per-rule counts on the public fake returns equal the public validators' recorded counts.

The peer counts were recorded by `benchmarks/peer_crosscheck.py --record` (date, ruleset and
validator version in peer_counts.yaml); every rule where we differ must be explained there, and
an explanation that no longer applies fails too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml

HERE = Path(__file__).resolve().parent
RECORD = yaml.safe_load((HERE / "peer_counts.yaml").read_text())


def _crosscheck_module() -> ModuleType:
    path = HERE.parents[2] / "benchmarks" / "peer_crosscheck.py"
    spec = importlib.util.spec_from_file_location("peer_crosscheck", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def crosscheck() -> ModuleType:
    return _crosscheck_module()


def test_ssda903_counts_agree_or_are_explained(shared_external: Path, tmp_path: Path,
                                               crosscheck: ModuleType) -> None:
    folder = tmp_path / "ssda903"
    folder.mkdir()
    for name in crosscheck.PEER_903_FILES:
        (folder / f"{name}.csv").symlink_to(shared_external / "ssda903" / f"{name}.csv")
    ours = crosscheck.our_counts("ssda903", [folder])
    peer = RECORD["ssda903"]["peer"]
    explained = RECORD["differences"]["ssda903"]
    table_of = {r.code: crosscheck.TABLES_903[r.table]
                for r in crosscheck.load_rules("ssda903").rules}
    # Our own integrity checks (no DfE code) have no peer count.
    assert set(peer) <= set(table_of), "peer_counts.yaml is stale: re-record it"
    assert len(peer) >= 85
    agree = 0
    for code, expected in peer.items():
        mine = ours.get(code, {}).get(table_of[code], 0)
        if code in explained:
            assert mine != expected, f"rule {code} now agrees: drop its explanation"
        else:
            assert mine == expected, f"rule {code}: ours {mine}, public validator {expected}"
            agree += 1
    assert agree >= 80


def test_cin_counts_agree_or_are_explained(shared_external: Path,
                                           crosscheck: ModuleType) -> None:
    explained = RECORD["differences"]["cin_census"]
    table_of = {r.code: crosscheck.TABLES_CIN[r.table]
                for r in crosscheck.load_rules("cin_census").rules}
    differing: set[str] = set()
    for name, peer in RECORD["cin_census"]["peer"].items():
        ours = crosscheck.our_counts("cin_census", [shared_external / "cin_census" / name])
        assert set(peer) <= set(table_of) and len(peer) >= 55, "stale peer_counts.yaml"
        for code, expected in peer.items():
            mine = ours.get(code, {}).get(table_of[code], 0)
            if mine != expected:
                assert code in explained, (f"{name} rule {code}: ours {mine}, public "
                                           f"validator {expected}")
                differing.add(code)
    assert differing == set(explained), "an explanation no longer applies"
