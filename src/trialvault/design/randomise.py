"""Verifiable randomisation of the rollout order (the algorithm is docs/design.md, exactly).

1. Commit: a 32-byte secret seed from `secrets`; its commitment
   SHA-256("trialvault-rollout-v1/commit" ‖ 0x00 ‖ study id ‖ 0x00 ‖ seed) is published with
   a UTC timestamp before the public beacon (e.g. a lottery draw named in advance) is known.
2. Reveal: seed and beacon are mixed, key = SHA-256("trialvault-rollout-v1/mix" ‖ 0x00 ‖ seed
   ‖ SHA-256(beacon as UTF-8)); a beacon fixed before the commitment's timestamp is refused.
3. Stream: block k = SHA-256(key ‖ k as 8 bytes big-endian), k = 0, 1, ...; 64-bit unsigned
   big-endian words are read from the concatenated blocks in order.
4. Uniform integer below n: draw words until one is below 2^64 − (2^64 mod n); return it mod n.
5. Fisher–Yates over the clusters sorted by DfE code: for i = n−1 down to 1, swap items i and
   uniform(i + 1). The order's first cluster takes the earliest step date, and so on.
6. Constraints (an LA that may not take some positions): a shuffled order that breaks one is
   rejected and the next shuffle is drawn from the same stream; the count is recorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from trialvault.errors import IntegrityError, PolicyRefusal, UsageError
from trialvault.study.model import Randomisation, StudyFile

VERSION = b"trialvault-rollout-v1"
SEED_BYTES = 32
MAX_REJECTIONS = 100_000


@dataclass(frozen=True)
class Commitment:
    seed: str            # hex, secret until the reveal
    commitment: str      # hex
    committed_at: dt.datetime


@dataclass(frozen=True)
class Draw:
    order: tuple[int, ...]           # LA codes, first to step first
    rejected_draws: int
    steps: tuple[tuple[int, dt.date], ...]  # (LA, step date)


def commitment_of(study_id: str, seed_hex: str) -> str:
    seed = _seed_bytes(seed_hex)
    return hashlib.sha256(VERSION + b"/commit\x00" + study_id.encode("utf-8") + b"\x00"
                          + seed).hexdigest()


def commit(study_id: str, *, now: dt.datetime | None = None) -> Commitment:
    """A fresh secret seed and its commitment, timestamped (UTC, whole seconds)."""
    seed = secrets.token_bytes(SEED_BYTES).hex()
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    return Commitment(seed=seed, commitment=commitment_of(study_id, seed), committed_at=when)


def _seed_bytes(seed_hex: str) -> bytes:
    text = seed_hex.strip().lower()
    if len(text) != 2 * SEED_BYTES or any(c not in "0123456789abcdef" for c in text):
        raise UsageError(f"the seed must be {2 * SEED_BYTES} hexadecimal characters")
    return bytes.fromhex(text)


def mix_key(seed_hex: str, beacon: str) -> bytes:
    if not beacon.strip():
        raise UsageError("the beacon value is empty")
    return hashlib.sha256(VERSION + b"/mix\x00" + _seed_bytes(seed_hex)
                          + hashlib.sha256(beacon.encode("utf-8")).digest()).digest()


def words(key: bytes) -> Iterator[int]:
    """64-bit big-endian words of the SHA-256 counter stream."""
    counter = 0
    while True:
        block = hashlib.sha256(key + counter.to_bytes(8, "big")).digest()
        for i in range(0, 32, 8):
            yield int.from_bytes(block[i:i + 8], "big")
        counter += 1


def uniform_below(n: int, stream: Iterator[int]) -> int:
    """An unbiased integer in [0, n) (rejection of the top partial range of 2^64)."""
    limit = (1 << 64) - ((1 << 64) % n)
    while True:
        word = next(stream)
        if word < limit:
            return word % n


def shuffle(items: Sequence[int], stream: Iterator[int]) -> list[int]:
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = uniform_below(i + 1, stream)
        out[i], out[j] = out[j], out[i]
    return out


def _breaks(order: Sequence[int], forbidden: dict[int, set[int]]) -> bool:
    return any(pos in forbidden.get(la, set()) for pos, la in enumerate(order, 1))


def derive_order(clusters: Sequence[int], seed_hex: str, beacon: str,
                 forbidden: dict[int, set[int]] | None = None) -> tuple[list[int], int]:
    """(the order, the number of rejected shuffles) for these clusters, seed and beacon."""
    forbidden = forbidden or {}
    items = sorted(clusters)
    if len(set(items)) != len(items):
        raise UsageError("a cluster is listed twice")
    unknown = sorted(set(forbidden) - set(items))
    if unknown:
        raise UsageError(f"randomisation constraint names LA {unknown[0]}, not in the rollout")
    stream = words(mix_key(seed_hex, beacon))
    for rejected in range(MAX_REJECTIONS + 1):
        order = shuffle(items, stream)
        if not _breaks(order, forbidden):
            return order, rejected
    raise PolicyRefusal(f"no order met the constraints in {MAX_REJECTIONS:,} draws: they are "
                        "impossible or too tight")


def _aware(when: dt.datetime | dt.date) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day)  # a date is its first instant
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def check_beacon_time(committed_at: dt.datetime, beacon_at: dt.datetime | dt.date) -> None:
    """Refuse a beacon fixed at or before the commitment: it could have been known."""
    if _aware(beacon_at) <= _aware(committed_at):
        raise PolicyRefusal(
            f"the beacon was fixed at {_aware(beacon_at).isoformat()}, not after the commitment "
            f"({_aware(committed_at).isoformat()}): it must be a value nobody could know when "
            "the seed was committed")


def forbidden_positions(r: Randomisation | None) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for c in (r.constraints if r else []):
        out.setdefault(c.la, set()).update(c.not_positions)
    return out


def reveal(study: StudyFile, *, seed: str, beacon: str, beacon_at: dt.datetime | dt.date,
           commitment: str | None = None, committed_at: dt.datetime | None = None) -> Draw:
    """Check the seed against the commitment and the beacon's time, and derive the rollout."""
    r = study.design.randomisation
    commitment = commitment or (r.commitment if r else None)
    committed_at = committed_at or (r.committed_at if r else None)
    if not commitment or committed_at is None:
        raise UsageError("no commitment: run `trialvault design randomise --commit` first and "
                         "record its commitment and committed_at in [design.randomisation]")
    if commitment_of(study.study.id, seed) != commitment:
        raise IntegrityError("the seed does not match the commitment")
    check_beacon_time(committed_at, beacon_at)
    order, rejected = derive_order(study.la_codes, seed, beacon, forbidden_positions(r))
    dates = sorted(s.step_date for s in study.design.rollout)
    return Draw(order=tuple(order), rejected_draws=rejected,
                steps=tuple(zip(order, dates, strict=True)))


@dataclass(frozen=True)
class Verification:
    ok: bool
    checks: tuple[tuple[str, bool, str], ...]  # (check, passed, detail)
    draw: Draw | None


def verify_rollout(study: StudyFile) -> Verification:
    """Recompute the order from the study file's commitment, seed and beacon and compare it
    with the study file's rollout (the step dates each LA has)."""
    r = study.design.randomisation
    needed = ("commitment", "committed_at", "seed", "beacon", "beacon_at")
    missing = [k for k in needed if r is None or getattr(r, k) is None]
    if missing:
        raise UsageError("design.randomisation lacks " + ", ".join(missing)
                         + ": nothing to verify (the rollout was not drawn with trialvault "
                         "design randomise, or it is not recorded yet)")
    assert r is not None and r.seed and r.beacon and r.commitment and r.committed_at
    assert r.beacon_at is not None
    checks: list[tuple[str, bool, str]] = []
    matches = commitment_of(study.study.id, r.seed) == r.commitment
    checks.append(("seed matches the commitment", matches, r.commitment))
    try:
        check_beacon_time(r.committed_at, r.beacon_at)
        checks.append(("beacon fixed after the commitment", True,
                       f"{_aware(r.beacon_at).isoformat()} > {_aware(r.committed_at).isoformat()}"))
    except PolicyRefusal as exc:
        checks.append(("beacon fixed after the commitment", False, str(exc)))
    order, rejected = derive_order(study.la_codes, r.seed, r.beacon, forbidden_positions(r))
    dates = sorted(s.step_date for s in study.design.rollout)
    derived = dict(zip(order, dates, strict=True))
    recorded = {s.la: s.step_date for s in study.design.rollout}
    # LAs sharing a step date may come in either order: compare the date each LA gets.
    same = all(derived[la] == recorded[la] for la in recorded)
    checks.append(("rollout equals the derived order", same,
                   " → ".join(str(la) for la in order)))
    if r.rejected_draws is not None:
        checks.append(("rejected draws as recorded", r.rejected_draws == rejected,
                       f"recomputed {rejected}, recorded {r.rejected_draws}"))
    draw = Draw(order=tuple(order), rejected_draws=rejected,
                steps=tuple(zip(order, dates, strict=True)))
    return Verification(ok=all(c[1] for c in checks), checks=tuple(checks), draw=draw)


def toml_snippet(study: StudyFile, draw: Draw, *, seed: str, beacon: str,
                 beacon_at: dt.datetime | dt.date) -> str:
    """What to paste into the study file after a reveal."""
    lines = ["# paste into [design.randomisation]:", f'seed = "{seed}"',
             f"beacon = {_toml_string(beacon)}",
             f"beacon_at = {_aware(beacon_at).isoformat().replace('+00:00', 'Z')}",
             f"rejected_draws = {draw.rejected_draws}", "",
             "# and replace the [[design.rollout]] entries with:"]
    for la, day in draw.steps:
        lines += ["[[design.rollout]]", f"la = {la}", f"step_date = {day.isoformat()}", ""]
    return "\n".join(lines)


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
