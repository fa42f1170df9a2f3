"""Verifiable randomisation: the test vector of docs/design.md, an independent implementation
of the documented algorithm, the refusals (wrong seed, early beacon, impossible constraints)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialvault.design.randomise import (
    commit,
    commitment_of,
    derive_order,
    reveal,
    uniform_below,
    verify_rollout,
)
from trialvault.errors import IntegrityError, PolicyRefusal, UsageError
from trialvault.study import load_study
from trialvault.study.model import StudyFile

REPO = Path(__file__).resolve().parents[3]
NWD_LAS = [354, 807, 877, 926, 856]
# The test vector printed in docs/design.md.
SEED = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
BEACON = "Lotto 2026-03-07: 7 12 23 31 44 58 bonus 19"
COMMITMENT = "b1c5a0bc3dbe5e871cc30abddfaddea5224e16372ce7abc436d765417f602c76"
MIX_KEY = "e9dec1dd91132263faccdda894816b45252328a593ca75a34a3a49db2d6778d7"


def spec_order(clusters: list[int], seed_hex: str, beacon: str,
               forbidden: dict[int, set[int]]) -> tuple[list[int], int]:
    """docs/design.md, written again from the text (no trialvault code)."""
    key = hashlib.sha256(b"trialvault-rollout-v1/mix\x00" + bytes.fromhex(seed_hex)
                         + hashlib.sha256(beacon.encode()).digest()).digest()
    buffer, counter, pos = b"", 0, 0

    def word() -> int:
        nonlocal buffer, counter, pos
        if pos + 8 > len(buffer):
            buffer += hashlib.sha256(key + counter.to_bytes(8, "big")).digest()
            counter += 1
        value = int.from_bytes(buffer[pos:pos + 8], "big")
        pos += 8
        return value

    def below(n: int) -> int:
        while True:
            w = word()
            if w < 2 ** 64 - 2 ** 64 % n:
                return w % n

    rejected = 0
    while True:
        order = sorted(clusters)
        for i in range(len(order) - 1, 0, -1):
            j = below(i + 1)
            order[i], order[j] = order[j], order[i]
        if not any(p in forbidden.get(la, set()) for p, la in enumerate(order, 1)):
            return order, rejected
        rejected += 1


def test_the_documented_test_vector() -> None:
    assert commitment_of("nwd", SEED) == COMMITMENT
    assert derive_order(NWD_LAS, SEED, BEACON) == ([877, 926, 856, 354, 807], 0)
    constrained = derive_order(NWD_LAS, SEED, BEACON, {354: {1}, 926: {1, 2}})
    assert constrained == ([807, 877, 926, 354, 856], 1)
    doc = (REPO / "docs" / "design.md").read_text(encoding="utf-8")
    for text in (SEED, BEACON, COMMITMENT, MIX_KEY, "877, 926, 856, 354, 807",
                 "807, 877, 926, 354, 856"):
        assert text in doc, f"docs/design.md lacks the test vector's {text!r}"


@settings(max_examples=60, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), beacon=st.text(min_size=1).filter(str.strip),
       clusters=st.lists(st.integers(100, 999), min_size=2, max_size=12, unique=True),
       data=st.data())
def test_the_code_follows_the_documented_algorithm(seed: bytes, beacon: str,
                                                   clusters: list[int], data: st.DataObject
                                                   ) -> None:
    la = data.draw(st.sampled_from(clusters))
    forbidden = {la: {1}} if len(clusters) > 1 else {}
    assert derive_order(clusters, seed.hex(), beacon, forbidden) == \
        spec_order(clusters, seed.hex(), beacon, forbidden)


def test_uniform_draws_reject_the_biased_top_of_the_range() -> None:
    n = 3
    limit = 2 ** 64 - 2 ** 64 % n
    assert uniform_below(n, iter([limit, limit + 1, 7])) == 7 % n
    with pytest.raises(StopIteration):
        uniform_below(n, iter([2 ** 64 - 1]))


def test_every_order_is_reachable_and_roughly_uniform() -> None:
    counts: dict[tuple[int, ...], int] = {}
    for k in range(1200):
        order, _ = derive_order([1, 2, 3], SEED, f"beacon {k}")
        counts[tuple(order)] = counts.get(tuple(order), 0) + 1
    assert len(counts) == 6 and min(counts.values()) > 140  # 200 expected each


def test_constraints_hold_and_impossible_ones_are_refused() -> None:
    for k in range(50):
        order, _ = derive_order(NWD_LAS, SEED, f"b{k}", {354: {1, 2}})
        assert order.index(354) >= 2
    with pytest.raises(PolicyRefusal, match="constraints"):
        derive_order([1, 2], SEED, BEACON, {1: {1, 2}})
    with pytest.raises(UsageError, match="LA 999"):
        derive_order(NWD_LAS, SEED, BEACON, {999: {1}})


def test_commit_draws_a_fresh_secret_seed() -> None:
    a, b = commit("nwd"), commit("nwd")
    assert a.seed != b.seed and len(a.seed) == 64
    assert a.commitment == commitment_of("nwd", a.seed)
    assert a.committed_at.tzinfo is not None
    assert commitment_of("other-study", a.seed) != a.commitment  # bound to the study


def _with_randomisation(study: StudyFile, **fields: object) -> StudyFile:
    r = study.design.randomisation
    assert r is not None
    design = study.design.replace(randomisation=r.replace(**fields))
    return study.replace(design=design)


COMMITTED_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
BEACON_AT = dt.datetime(2026, 3, 7, 20, 0, tzinfo=dt.UTC)


def test_reveal_checks_the_seed_and_the_beacon_time() -> None:
    study = _with_randomisation(load_study(REPO / "studies" / "no-wrong-door.toml"),
                                commitment=COMMITMENT, committed_at=COMMITTED_AT)
    draw = reveal(study, seed=SEED, beacon=BEACON, beacon_at=BEACON_AT)
    assert draw.order == (877, 926, 856, 354, 807)
    assert [d for _, d in draw.steps] == sorted(s.step_date for s in study.design.rollout)
    with pytest.raises(IntegrityError, match="does not match the commitment"):
        reveal(study, seed="ff" * 32, beacon=BEACON, beacon_at=BEACON_AT)
    with pytest.raises(PolicyRefusal, match="not after the commitment"):
        reveal(study, seed=SEED, beacon=BEACON, beacon_at=dt.datetime(2026, 2, 28, tzinfo=dt.UTC))
    # a beacon dated the commitment's day (no time) counts from that day's first instant
    with pytest.raises(PolicyRefusal):
        reveal(study, seed=SEED, beacon=BEACON, beacon_at=dt.date(2026, 3, 1))


def test_verify_recomputes_and_compares_with_the_rollout() -> None:
    nwd = load_study(REPO / "studies" / "no-wrong-door.toml")
    study = _with_randomisation(nwd, commitment=COMMITMENT, committed_at=COMMITTED_AT,
                                seed=SEED, beacon=BEACON, beacon_at=BEACON_AT, rejected_draws=0)
    draw = reveal(study, seed=SEED, beacon=BEACON, beacon_at=BEACON_AT)
    rollout = [s.replace(step_date=dict(draw.steps)[s.la])
               for s in study.design.rollout]
    good = study.replace(design=study.design.replace(rollout=rollout))
    assert verify_rollout(good).ok
    # the recorded (illustrative) NWD order is not the drawn one
    bad = verify_rollout(study)
    assert not bad.ok and [c for c, ok, _ in bad.checks if not ok] == [
        "rollout equals the derived order"]
    early = verify_rollout(_with_randomisation(good, beacon_at=COMMITTED_AT))
    assert not early.ok
    with pytest.raises(UsageError, match="lacks"):
        verify_rollout(nwd)
