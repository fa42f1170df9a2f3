"""Where a package's data came from: `synthetic` (made by `trialvault synth`), `real` (an LA's
returns, declared by the LA) or `unknown` (nobody said).

The report's "SYNTHETIC DATA — not results of the trial" banner comes off only when every
package of the vault says `real` (disclose.from_vault.data_origin), so the claim a report makes
follows from what each package recorded. `trialvault synth` leaves a marker file in every
folder it writes; `prepare` stamps `synthetic` on a package built from files under such a
folder and refuses `--origin real` for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from trialvault.errors import PolicyRefusal

ORIGINS = ("synthetic", "real", "unknown")
MARKER = "SYNTHETIC-DATA.txt"
MARKER_TEXT = ("Made by `trialvault synth`: synthetic records of made-up children, not any "
               "local authority's returns. Packages prepared from these files say "
               "origin = synthetic.\n")


def write_marker(folder: Path) -> None:
    """Mark `folder` as holding synthetic returns."""
    (folder / MARKER).write_text(MARKER_TEXT, encoding="utf-8")


def synthetic_source(paths: Iterable[Path | None]) -> Path | None:
    """The marker file above (or beside) any of `paths`, if one is there."""
    for path in paths:
        if path is None:
            continue
        here = path.resolve()
        for folder in (here, *here.parents) if here.is_dir() else here.parents:
            if (folder / MARKER).is_file():
                return folder / MARKER
    return None


def package_origin(declared: str | None, inputs: Iterable[Path | None]) -> str:
    """The origin a package records: synthetic when its files carry the marker (a declared
    `real` is then refused), else what the LA declared, else unknown."""
    if declared is not None and declared not in ORIGINS:
        raise PolicyRefusal(f"--origin must be one of {', '.join(ORIGINS)}, not {declared!r}")
    marker = synthetic_source(inputs)
    if marker is not None:
        if declared == "real":
            raise PolicyRefusal(f"--origin real refused: the input files were made by "
                                f"`trialvault synth` ({marker} is beside them)")
        return "synthetic"
    return declared or "unknown"
