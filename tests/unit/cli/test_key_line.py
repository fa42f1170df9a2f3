"""`key_line`: a public key given on the command line directly or as the file holding it."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialvault.cli_common import key_line
from trialvault.errors import InputFileError
from trialvault.rights.export import new_access_key

KEY = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"


def test_a_key_given_directly_or_in_a_file(tmp_path: Path) -> None:
    assert key_line(f"  {KEY} ", prefix="age1", option="--recipient") == KEY
    path = tmp_path / "k.pub"
    path.write_text(f"# made at the LA\n\n{KEY}\n", encoding="utf-8")
    assert key_line(str(path), prefix="age1", option="--recipient") == KEY


def test_a_secret_key_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    secret = tmp_path / "access-key.txt"
    public = new_access_key(secret)
    with pytest.raises(InputFileError) as caught:
        key_line(str(secret), prefix="age1", option="--recipient")
    assert "AGE-SECRET-KEY" not in str(caught.value) and public not in str(caught.value)
    assert "no public key" in str(caught.value)


def test_neither_a_key_nor_a_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="neither a public key"):
        key_line(str(tmp_path / "missing.pub"), prefix="age1", option="--recipient")
