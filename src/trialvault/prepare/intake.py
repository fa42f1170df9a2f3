"""Intake: what a real LA folder can hold by mistake is refused or named before anything runs.

- SSDA903: a folder of CSVs (or per-year subfolders, or an XML file). Two files of one table
  (`episodes.csv` beside `episodes (1).csv`) are refused, both named; files that are not CSV are
  named in a note; a CSV whose columns match no table names the unknown and the missing
  required columns (the reader does all three). The collection year of each return and how it
  was found (folder name, `--ssda903-year`, latest episode start) is reported.
- `--previous DIR`: last year's SSDA903 return, read only so the year-on-year rules (202-208,
  502, 503A-J, NoE, ...) have something to compare with. It must be the year before the
  earliest year of `--ssda903`; its own findings are not reported and its rows are not packaged.
- CIN census: XML files, or folders of them (`--cin` given once per file or folder). Two files
  of one collection year are refused, both named. A header LEA that is not `--la` is an error
  naming the file: another LA's return is never validated, let alone sealed, as this LA's.
- Reference data for the rules that need it (`--postcodes`: a postcode directory extract,
  `--providers`: Ofsted's provider list), and the LA's own ONS code from the study file.
- Wrong encodings are explained by the readers (the byte and what Windows-1252 makes of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trialvault.errors import InputFileError
from trialvault.formats import DEFAULT_LIMITS, ReadLimits, SourceTables, as_arrow
from trialvault.study.model import StudyFile


@dataclass(frozen=True)
class Intake:
    """The returns read, with what the analyst should know about them (names, no values)."""

    sources: dict[str, SourceTables]
    years: dict[str, dict[int, str]]          # format -> {collection year: how it was found}
    previous: dict[str, set[int]] = field(default_factory=dict)  # years read as context only
    reference: list[str] = field(default_factory=list)          # reference tables given
    notes: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> dict[str, int]:
        return {f: s.row_count for f, s in self.sources.items()}


def _as_list(paths: Path | Sequence[Path]) -> list[Path]:
    return [paths] if isinstance(paths, Path) else list(paths)


def cin_files(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """The CIN census XML files named, folders expanded; and the other files of those folders."""
    files: list[Path] = []
    ignored: list[str] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            xmls = [p for p in inside if p.suffix.lower() == ".xml"]
            if not xmls:
                raise InputFileError("folder holds no CIN census XML file", file=str(path))
            files += xmls
            ignored += [p.name for p in inside if p not in xmls]
        else:
            files.append(path)
    return files, ignored


def _merge(current: SourceTables, previous: SourceTables) -> SourceTables:
    import pyarrow as pa

    names = sorted(set(current.tables) | set(previous.tables))
    tables = {n: pa.concat_tables([as_arrow(t) for t in (current.tables.get(n),
                                                         previous.tables.get(n))
                                   if t is not None]) for n in names}
    meta = dict(current.meta)
    meta["collection_years"] = sorted({*current.meta.get("collection_years", []),
                                       *previous.meta.get("collection_years", [])})
    meta["year_from"] = {**previous.meta.get("year_from", {}), **current.meta.get("year_from", {})}
    meta["ignored"] = [*current.meta.get("ignored", []), *previous.meta.get("ignored", [])]
    return SourceTables(format=current.format, tables=tables,
                        files=(*current.files, *previous.files), meta=meta)


def _read_903(ssda903: Path | Sequence[Path], previous: Path | None, year: int | None,
              limits: ReadLimits) -> tuple[SourceTables, set[int]]:
    from trialvault.formats import read_ssda903

    current = read_ssda903(_as_list(ssda903), limits=limits, year=year)
    if previous is None:
        return current, set()
    years = current.meta["collection_years"]
    wanted = min(years) - 1
    before = read_ssda903([previous], limits=limits, year=None if year is None else year - 1)
    got = before.meta["collection_years"]
    if got != [wanted]:
        raise InputFileError(f"--previous holds collection year(s) {got}; it must be last year's "
                             f"return, {wanted} (the year before {min(years)})",
                             file=str(previous), rule="previous-year")
    return _merge(current, before), {wanted}


def _check_cin(source: SourceTables, la_code: int) -> list[str]:
    notes = []
    by_year: dict[int, str] = {}
    for header in source.meta.get("headers", []):
        lea = header.get("la")
        if lea is None or not str(lea).strip():
            notes.append(f"{header['file']}: the header gives no LEA; read as LA {la_code}'s")
        elif str(lea).strip() != str(la_code):
            raise InputFileError(f"the header says LEA {str(lea).strip()}, not {la_code} (--la): "
                                 "this is another LA's return", file=header["file"],
                                 rule="la-code")
        year = header.get("collection_year")
        if year is not None and year in by_year:
            raise InputFileError(f"{by_year[year]} and {header['file']} are both the {year} "
                                 "CIN census; keep the one to submit", rule="duplicate-year")
        if year is not None:
            by_year[year] = header["file"]
    return notes


def read_returns(study: StudyFile, la_code: int, *, ssda903: Path | Sequence[Path] | None,
                 cin: Path | Sequence[Path] | None, education: Path | None = None,
                 neet: Path | None = None, previous: Path | None = None,
                 postcodes: Path | None = None, providers: Path | None = None,
                 ssda903_year: int | None = None, limits: ReadLimits = DEFAULT_LIMITS
                 ) -> Intake:
    """Read one LA's returns with the hardened readers (see module doc). `ssda903` or `cin` may
    be None (or empty) to check one return only."""
    notes: list[str] = []
    sources: dict[str, SourceTables] = {}
    years: dict[str, dict[int, str]] = {}
    previous_years: set[int] = set()
    reference: list[str] = []
    if not ssda903 and not cin:
        raise InputFileError("give a return to check: --ssda903 and/or --cin")
    if not ssda903 and (previous or postcodes or providers):
        raise InputFileError("--previous, --postcodes and --providers go with --ssda903")
    if ssda903:
        sources["ssda903"], previous_years, reference = _ssda903(
            study, la_code, ssda903, previous, postcodes, providers, ssda903_year, limits, notes)
        years["ssda903"] = {int(y): h for y, h in
                            sorted(sources["ssda903"].meta.get("year_from", {}).items())}
    if cin:
        cin_paths, cin_ignored = cin_files(_as_list(cin))
        if cin_ignored:
            notes.append(f"CIN folder: not read (not XML): {', '.join(sorted(cin_ignored))}")
        from trialvault.formats import read_cin_census

        census = read_cin_census(cin_paths, limits=limits)
        notes += _check_cin(census, la_code)
        sources["cin_census"] = census
        years["cin_census"] = {int(h["collection_year"]): f"{h['file']}: {h['year_from']}"
                               for h in census.meta.get("headers", [])
                               if h.get("collection_year") is not None}
    if education:
        from trialvault.formats import read_education

        sources["education"] = read_education([education], limits=limits)
    if neet:
        from trialvault.formats import read_neet

        sources["neet"] = read_neet([neet], limits=limits)
    return Intake(sources=sources, years=years,
                  previous={"ssda903": previous_years} if previous_years else {},
                  reference=reference, notes=notes)


def _ssda903(study: StudyFile, la_code: int, ssda903: Path | Sequence[Path],
             previous: Path | None, postcodes: Path | None, providers: Path | None,
             year: int | None, limits: ReadLimits, notes: list[str]
             ) -> tuple[SourceTables, set[int], list[str]]:
    from trialvault.formats.reference import local_authority_table, read_reference_table

    ssda, previous_years = _read_903(ssda903, previous, year, limits)
    reference = []
    extra = {}
    if postcodes is not None:
        extra["postcodes"] = read_reference_table("postcodes", postcodes, limits)
        reference.append("postcodes")
    if providers is not None:
        extra["providers"] = read_reference_table("providers", providers, limits)
        reference.append("providers")
    if extra:
        extra["local_authority"] = local_authority_table(study.la(la_code).ons_code)
        ssda = SourceTables(ssda.format, {**ssda.tables, **extra}, ssda.files, ssda.meta)
    ignored = ssda.meta.get("ignored") or []
    if ignored:
        notes.append(f"SSDA903 folder: not read (not CSV): {', '.join(sorted(ignored))}")
    return ssda, previous_years, reference
