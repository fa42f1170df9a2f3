"""The data spec as data: input-format layouts (YAML) and DfE code lists, with their loaders."""

from trialvault.spec.layout import (
    FORMATS,
    CodeGroup,
    CodeList,
    ColumnLayout,
    FormatLayout,
    TableLayout,
    code_list_group,
    load_code_lists,
    load_layout,
    parse_code_lists,
    parse_layout,
)

__all__ = [
    "FORMATS",
    "CodeGroup",
    "CodeList",
    "ColumnLayout",
    "FormatLayout",
    "TableLayout",
    "code_list_group",
    "load_code_lists",
    "load_layout",
    "parse_code_lists",
    "parse_layout",
]
