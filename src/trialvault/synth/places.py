"""Where synthetic children live and are placed: real postcodes and an LA's providers.

The validators derive a placement's LA, whether it is in or out of the LA's area and its distance
from home from the postcodes (ONS Postcode Directory), so made-up postcodes make every placement
look unlocatable (903 rules 169, 179, 392a, 392c). The generator therefore draws from a sample of
real postcodes (unit postcodes cover about 15 addresses each; none points at a person): about
30 per study LA and 8 per neighbouring upper-tier LA (several children and homes share one, as
real neighbours do), in areas whose 2021 district codes the validators' LA lookup knows. The
sample is data (`postcode_sample.csv`, `area_neighbours.csv`); an LA lives in the area of its
ONS code in the study file (`SynthParams.la_areas`).

Postcodes: Office for National Statistics, ONS Postcode Directory, licensed under the Open
Government Licence v3.0. Contains OS data (c) Crown copyright and database right; contains Royal
Mail data (c) Royal Mail copyright and database right.

Providers: every LA gets a fixed register drawn from (seed, LA) - its own fostering service and
regional adoption agency, independent fostering agencies, children's homes (own, private,
voluntary), secure homes, residential schools and supported accommodation - each with an Ofsted
URN, a provider code and, for homes, the postcode of its premises, so that the same URN always
comes with the same provider, placement types and address (903 rules 219, 221, 224, 229).
`generate_files` writes the register beside each LA's returns as `<LA>/providers.csv`, laid out
as the SSDA903 `providers` reference table (`trialvault prepare --providers`): the Ofsted
register an LA would supply with these returns.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The postcode sample (`postcode_sample.csv`: area, postcode) and which sampled areas neighbour
# which (`area_neighbours.csv`: area, neighbour), areas named by ONS upper-tier LA code.
_HERE = Path(__file__).resolve().parent
POSTCODE_SAMPLE = _HERE / "postcode_sample.csv"
AREA_NEIGHBOURS = _HERE / "area_neighbours.csv"


@functools.cache
def _sample() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    postcodes: dict[str, list[str]] = {}
    neighbours: dict[str, list[str]] = {}
    with POSTCODE_SAMPLE.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            postcodes.setdefault(row["area"], []).append(row["postcode"])
    with AREA_NEIGHBOURS.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            neighbours.setdefault(row["area"], []).append(row["neighbour"])
    return ({a: tuple(c) for a, c in postcodes.items()},
            {a: tuple(n) for a, n in neighbours.items()})


def postcodes_by_area() -> dict[str, tuple[str, ...]]:
    return _sample()[0]


def home_area(ons_code: str, la: int) -> str:
    """The sampled area an LA's children live in: its own (the study file's ONS code) when the
    sample has it and its neighbours, else one of the sampled home areas, fixed by LA code."""
    homes = _sample()[1]
    return ons_code if ons_code in homes else sorted(homes)[la % len(homes)]


@dataclass(frozen=True)
class Places:
    """Postcode pools of one LA: its own area, its neighbours, and far away."""

    home: tuple[str, ...]
    near: tuple[str, ...]
    far: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def places_of(area: str) -> Places:
    """The postcode pools of a sampled home area (see `home_area`)."""
    postcodes, neighbours = _sample()
    near = tuple(pc for n in neighbours[area] for pc in postcodes[n])
    far = tuple(pc for a in sorted(neighbours) if a != area for pc in postcodes[a])
    return Places(postcodes[area], near, far)


@dataclass(frozen=True)
class Provider:
    """One Ofsted-registered provider in an LA's synthetic world."""

    urn: str
    code: str                 # PLACE_PROVIDER
    places: tuple[str, ...]   # placement types it offers
    postcode: str             # its premises (the placement postcode for homes)


# (placement types, provider code, where, how many) of each LA's register.
REGISTER: tuple[tuple[tuple[str, ...], str, str, int], ...] = (
    (("U1", "U2", "U3", "U4", "U5", "U6"), "PR1", "home", 1),  # the LA's fostering service
    (("A3", "A4", "A5", "A6"), "PR1", "home", 1),              # its regional adoption agency
    (("U4", "U5", "U6"), "PR4", "home", 2),                    # independent fostering agencies
    (("U4", "U5", "U6"), "PR4", "near", 2),
    (("U4", "U6"), "PR5", "near", 1),
    (("K2",), "PR1", "home", 2),                                # children's homes
    (("K2",), "PR4", "home", 3),
    (("K2",), "PR4", "near", 5),
    (("K2",), "PR4", "far", 3),
    (("K2",), "PR5", "near", 2),
    (("K1",), "PR1", "home", 1),                                # secure children's homes
    (("K1",), "PR2", "near", 1),
    (("K1",), "PR2", "far", 1),
    (("S1",), "PR4", "near", 1),                                # residential schools
    (("S1",), "PR5", "far", 1),
    (("K3",), "PR4", "home", 2),                                # supported accommodation
    (("K3",), "PR1", "home", 1),
    # Drawn last so that adding them left every earlier provider's URN and address as it was.
    (("R3",), "PR4", "near", 1),                                # family centres, mother and
    (("R3",), "PR5", "far", 1),                                 # baby units
)


@functools.lru_cache(maxsize=64)
def register_of(seed: int, la: int, area: str) -> tuple[Provider, ...]:
    """The providers of LA `la`, whose children live in `area` (fixed for a seed and LA,
    whatever the chunk)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, la, 31]))
    where = places_of(area)
    out: list[Provider] = []
    used: set[str] = set()
    for places, code, at, n in REGISTER:
        pool = getattr(where, at)
        for _ in range(n):
            urn = ""
            while not urn or urn in used:
                # Ofsted social care URNs: SC + 6 digits, or 7 digits for newer registrations.
                urn = (f"SC{int(rng.integers(0, 1_000_000)):06d}" if rng.random() < 0.6
                       else f"{int(rng.integers(1_000_000, 3_000_000))}")
            used.add(urn)
            out.append(Provider(urn, code, places, pool[int(rng.integers(0, len(pool)))]))
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def providers_for(seed: int, la: int, area: str, place: str) -> tuple[Provider, ...]:
    return tuple(p for p in register_of(seed, la, area) if place in p.places)


# The register's file in each LA's folder (the SSDA903 `providers` reference table).
PROVIDERS_FILE = "providers.csv"


def register_rows(seed: int, la: int, area: str) -> list[dict[str, str]]:
    """The LA's register as rows of the `providers` reference table: URN, placement types and
    provider codes (comma-separated), postcode as Ofsted's lists are matched (upper case, no
    spaces), no end of registration (every provider is open) and the ONS code of the
    upper-tier LA the premises are in."""
    return [{"URN": p.urn, "PLACE_CODES": ",".join(p.places), "PROVIDER_CODES": p.code,
             "POSTCODE": p.postcode.replace(" ", "").upper(), "REG_END": "",
             "LA_CODE_INFERRED": _area_of_postcode()[p.postcode]}
            for p in register_of(seed, la, area)]


@functools.cache
def _area_of_postcode() -> dict[str, str]:
    return {pc: area for area, codes in postcodes_by_area().items() for pc in codes}


def write_register(path: Path, seed: int, la: int, area: str, columns: list[str]) -> int:
    """Write the LA's register to `path` (CSV with `columns`, the layout's); returns its rows."""
    rows = register_rows(seed, la, area)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
