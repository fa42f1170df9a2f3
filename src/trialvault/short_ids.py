"""Short ids: wherever a command takes an id, a unique prefix of it will do.

Lists show ids shortened (a run's first 8 characters, a release's random part), so a command
given such a short form finds the one id it names. Matching is case-insensitive and works on
the whole id or on its random part (`REL-20261201-1a2b3c4d` is also `1a2b`, `1a2b3c4d` or
`rel-20261201-1a`). A prefix matching several ids is refused with the candidates named (never a
guess); one matching none is `NotFound` (exit code 8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from trialvault.errors import NotFound, UsageError

MIN_SHORT = 4  # characters: shorter prefixes match too much to be typed on purpose
SHOWN = 5


class AmbiguousId(UsageError):
    """A short id matches several ids (exit code 2: give more characters)."""


def resolve(text: str, candidates: Iterable[str], *, what: str,
            parts: Callable[[str], Iterable[str]] = lambda c: (c,),
            listed_by: str = "") -> str:
    """The one candidate `text` names: equal to it, or a prefix (of at least MIN_SHORT
    characters) of the candidate or of one of its `parts` (e.g. a release id's random part)."""
    wanted = text.strip().lower()
    every = list(candidates)
    hint = f" ({listed_by} lists them)" if listed_by else ""
    for c in every:
        if c.lower() == wanted:
            return c
    if len(wanted) < MIN_SHORT:
        raise NotFound(f"no {what} {text!r}{hint}; a short id needs at least {MIN_SHORT} "
                       "characters")
    found = [c for c in every if any(p.lower().startswith(wanted) for p in (c, *parts(c)))]
    if not found:
        raise NotFound(f"no {what} {text!r} in this vault{hint}")
    if len(found) > 1:
        named = ", ".join(sorted(found)[:SHOWN]) + (", …" if len(found) > SHOWN else "")
        raise AmbiguousId(f"{text!r} matches {len(found)} {what}s ({named}): give more "
                          "characters")
    return found[0]
