"""The retention rule of a study, and what a purge would destroy.

The rule comes only from the study file (`[retention]`): deletion is due on the first day of the
deletion season (`Retention.deletion_due`, meteorological seasons). Nothing here opens the
vault: the inventory lists files (names, sizes), key slots (user names and roles, which are in
the plaintext `keyslots.json`) and any package or key files named by the caller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from trialvault.errors import NotFound
from trialvault.study.model import StudyFile
from trialvault.trust import KEYRING_NAME as KEYSLOTS_NAME
from trialvault.trust import Keyring
from trialvault.vault.inventory import Artefact


@dataclass(frozen=True)
class FileItem:
    path: Path
    bytes: int
    kind: str  # vault | package | key


@dataclass(frozen=True)
class RetentionStatus:
    study_id: str
    rule: str
    deletion_label: str
    window: tuple[dt.date, dt.date]
    due: dt.date
    today: dt.date
    method: str
    files: list[FileItem] = field(default_factory=list)
    key_slots: list[tuple[str, str]] = field(default_factory=list)  # (user, role)
    copies: list[Artefact] = field(default_factory=list)
    """Stored copies holding children's data (inventory) not yet destroyed; listed only when
    the caller unlocked the vault (`stored_copies`)."""

    @property
    def days_left(self) -> int:
        return (self.due - self.today).days

    @property
    def is_due(self) -> bool:
        return self.today >= self.due

    @property
    def state(self) -> str:
        """"not due", "due" (within the deletion window) or "overdue" (after it)."""
        if self.today < self.due:
            return "not due"
        return "overdue" if self.today > self.window[1] else "due"

    @property
    def days_overdue(self) -> int:
        """Days since the deletion window ended (0 unless overdue)."""
        return max((self.today - self.window[1]).days, 0)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


def _files_under(path: Path, kind: str) -> list[FileItem]:
    if path.is_file():
        return [FileItem(path, path.stat().st_size, kind)]
    if path.is_dir():
        return [FileItem(p, p.stat().st_size, kind) for p in sorted(path.rglob("*"))
                if p.is_file() and not p.is_symlink()]
    raise NotFound(f"{path}: no such file or folder")


def inventory(vault_dir: Path, packages: list[Path] | None = None,
              keys: list[Path] | None = None) -> list[FileItem]:
    """Every file a purge would delete: the vault folder, then packages, then keys."""
    if not (vault_dir / KEYSLOTS_NAME).exists():
        raise NotFound(f"{vault_dir}: not a vault (no {KEYSLOTS_NAME}; name the vault with --vault "
                       "DIR or TRIALVAULT_VAULT)")
    items = _files_under(vault_dir, "vault")
    for p in packages or []:
        items.extend(_files_under(p, "package"))
    for p in keys or []:
        items.extend(_files_under(p, "key"))
    seen: set[Path] = set()
    unique = []
    for item in items:
        resolved = item.path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(item)
    return unique


def retention_status(study: StudyFile, vault_dir: Path, *, today: dt.date,
                     packages: list[Path] | None = None, keys: list[Path] | None = None,
                     copies: list[Artefact] | None = None) -> RetentionStatus:
    """The rule, the due date, days left and the inventory of what a purge destroys."""
    r = study.retention
    slots: list[tuple[str, str]] = [(s.user, str(s.role)) for s in Keyring.load(vault_dir).slots]
    return RetentionStatus(
        study_id=study.study.id, rule=r.rationale, deletion_label=r.deletion_label,
        window=r.deletion_window, due=r.deletion_due, today=today, method=r.deletion_method,
        files=inventory(vault_dir, packages, keys), key_slots=slots, copies=copies or [])


def stored_copies(vault_dir: Path, user: str, password: str) -> list[Artefact]:
    """Every registered copy (kept package, access response, export, backup) that is not yet
    destroyed: a purge must destroy these too (read from the register, so it needs a DPO's or
    data manager's password)."""
    from trialvault.vault import inventory as inv
    from trialvault.vault.session import open_vault

    with open_vault(vault_dir, user, password, command="retention status", args={},
                    write=False) as s:
        s.require_role("data-manager", "dpo")
        return inv.list_artefacts(s.con, states=("held", "to_destroy"))
