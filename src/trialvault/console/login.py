"""Signing in to the console: one key-slot unlock per attempt, the same cost for every name.

- A name with no key slot costs the same Argon2id work as a wrong password for a real slot
  (the key ring's dummy derivation with the slots' own cost parameters), so the answer's
  timing does not tell which user names exist.
- Failures are counted per user name and per client address (`LoginThrottle`); once a count
  passes its free tries, sign-ins wait (doubling, up to 15 minutes) without being tried, and
  the start of each wait is written to the vault's access-failure log.
- The vault itself logs each refused unlock (`access-failures.log`); a name that matched no
  slot is stored there only as a fixed marker, never as typed (it may be a password or a
  child's code typed into the wrong box).

Runs in a worker thread (it blocks for the Argon2 time); vault work goes through `in_vault`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from trialvault.console.security import BackoffPolicy, LoginThrottle
from trialvault.errors import TrialvaultError, VaultLocked
from trialvault.trust import Keyring

T = TypeVar("T")
LOGIN_COMMAND = "console login"
LOGOUT_COMMAND = "console logout"
WRONG = "Wrong user name or password."


@dataclass(frozen=True)
class LoginOutcome:
    role: str | None = None
    retry_after: float = 0.0
    http_status: int = 401
    message: str = WRONG


class LoginService:
    def __init__(self, vault_dir: Path, policy: BackoffPolicy,
                 in_vault: Callable[[Callable[[], Any]], Any]) -> None:
        self.vault_dir = vault_dir
        self.throttle = LoginThrottle(policy)
        self._in_vault = in_vault

    def attempt(self, user: str, password: str, address: str) -> LoginOutcome:
        wait = self.throttle.retry_after(user, address)
        if wait > 0:
            return LoginOutcome(retry_after=wait, http_status=429)
        try:
            known = any(s.user == user for s in Keyring.load(self.vault_dir).slots)
        except TrialvaultError:
            known = False
        try:
            role = self._in_vault(lambda: self._unlock(user, password))
        except VaultLocked:
            return LoginOutcome(http_status=503, message="The vault is open in another "
                                "process; try again in a moment.")
        except TrialvaultError:
            role = None
        # An unknown name costs a dummy Argon2id run inside `Keyring.unlock` (for every caller,
        # the CLI included), so its answer takes as long as a wrong password's.
        if role is not None:
            self.throttle.succeeded(user, address)
            return LoginOutcome(role=role, http_status=303, message="")
        count, wait = self.throttle.failed(user, address)
        if wait > 0:
            self._log_backoff(user, known, count, wait, address)
        return LoginOutcome()

    def _unlock(self, user: str, password: str) -> str:
        from trialvault.vault.session import open_vault

        # A refusal is logged by the vault (name stored only if it matched a slot).
        with open_vault(self.vault_dir, user, password, command=LOGIN_COMMAND,
                        args={"user": user}, write=False) as vault:
            return vault.role

    def _log_backoff(self, user: str, known: bool, count: int, wait: float,
                     address: str) -> None:
        from trialvault.vault.session import log_failure

        reason = (f"{count} failed console sign-ins for this user name (client {address}): "
                  f"further sign-ins wait {wait:.0f} s")
        # If this line cannot be written the refusal stands; the vault logged each failure.
        with contextlib.suppress(OSError, TrialvaultError):
            self._in_vault(lambda: log_failure(self.vault_dir, user, LOGIN_COMMAND, reason,
                                               known_user=known, fixed_reason=True))
