"""The base of the study and spec models: frozen msgspec structs that refuse unknown keys.

msgspec checks types and constraints when it converts or decodes (a study file, a spec YAML, a
stored study's JSON) and then calls `__post_init__`, where a model checks across its fields.
msgspec rather than pydantic: the LA's command loads the study and the spec too, and pydantic's
import and schema building cost it about 10 MB of peak memory (issue 19's target is the public
validator's peak).

Every subclass repeats `frozen=True, kw_only=True`: msgspec applies `kw_only` to a class's own
fields only (it lets a field without a default follow one with a default, as pydantic allowed),
and mypy reads `frozen` class by class.
"""

from __future__ import annotations

import copy
from typing import Any, Self

import msgspec


class Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`, not checked again (as pydantic's `model_copy`): tests and
        what-if analyses build studies a file could not declare, such as one without its
        primary outcome. Every file and stored study is checked when it is read."""
        changed = copy.copy(self)
        for name, value in changes.items():
            if name not in self.__struct_fields__:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            msgspec.structs.force_setattr(changed, name, value)
        return changed
