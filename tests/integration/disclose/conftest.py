"""A real encrypted vault with an evaluation run, for the release workflow tests (see
`setup_vault.py`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import add_user, init_vault


def load_setup() -> ModuleType:
    """`setup_vault.py` under a unique module name (tests import it the same way)."""
    name = "disclose_setup_vault"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(
            "setup_vault.py"))
        assert spec and spec.loader
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


@pytest.fixture(scope="package")
def evaluated_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trialvault.evaluate import evaluate_vault

    setup = load_setup()
    passwords, roles = setup.PASSWORDS, setup.ROLES

    path = tmp_path_factory.mktemp("release") / "vault"
    init_vault(path, "dm", passwords["dm"], kdf_params=FAST_TEST_KDF, study_id="nwd")
    for user, role in roles.items():
        add_user(path, "dm", passwords["dm"], user, passwords[user], role=role,
                 kdf_params=FAST_TEST_KDF)
    study = setup.trimmed_study()
    setup.fill_vault(path, setup.toy_tables(study, seed=7, per_cell=12))
    evaluate_vault(path, "ana", passwords["ana"], study)
    return path
