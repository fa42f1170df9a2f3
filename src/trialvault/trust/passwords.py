"""Password policy for key slots: a minimum length and a strength estimate (zxcvbn).

The policy is applied by the key-ring code itself (creating a slot, changing a password), not by
the CLI, so no path into the vault can set a weak password. zxcvbn scores guessability 0–4
against dictionaries, common patterns and the user's own name; we ask for 3 ("safely
unguessable: moderate protection from offline slow-hash scenario") on top of Argon2id.
"""

from __future__ import annotations

from trialvault.errors import AccessDenied

MIN_LENGTH = 12
MIN_SCORE = 3
MAX_LENGTH = 1024


class WeakPassword(AccessDenied):
    """A new password breaks the policy (the message says why, never the password)."""


def check_password(password: str, *, user: str, context: tuple[str, ...] = ()) -> None:
    """Refuse a password that is short or guessable; return quietly otherwise."""
    import zxcvbn  # imported here: only commands that set a password need it

    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters "
                           f"(this one has {len(password)}); a few unrelated words work well")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    # zxcvbn's cost grows with length; its estimate is settled well before 100 characters.
    result = zxcvbn.zxcvbn(password[:100], user_inputs=[user, "trialvault", *context])
    if int(result["score"]) < MIN_SCORE:
        feedback = result.get("feedback") or {}
        hint = " ".join(x for x in [feedback.get("warning") or "",
                                    *(feedback.get("suggestions") or [])] if x)
        raise WeakPassword(f"the password is too easy to guess (strength {result['score']} of "
                           f"4, needs {MIN_SCORE}){': ' + hint if hint else ''}")
