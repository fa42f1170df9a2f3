"""Hardened XML: no DTDs or entities, size/depth/count limits, exact start lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialvault.errors import InputFileError
from trialvault.formats.limits import ReadLimits
from trialvault.formats.xmlfile import iter_records

RECORDS = frozenset({"Child"})


def write(tmp_path: Path, text: str, name: str = "cin.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read(path: Path, limits: ReadLimits | None = None) -> list:  # type: ignore[type-arg]
    return list(iter_records(path, "Message", RECORDS, limits or ReadLimits()))


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
<Message><Child>&lol2;</Child></Message>
"""

EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Message><Child>&xxe;</Child></Message>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL,
                                  '<!DOCTYPE Message SYSTEM "http://x/y.dtd"><Message/>'])
def test_dtds_and_entities_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(InputFileError, match="forbidden construct") as err:
        read(write(tmp_path, text))
    assert err.value.rule == "xml-forbidden" and err.value.file == "cin.xml"


def test_truncated_file_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "<Message>\n<Child>\n<A>1</A>\n")
    with pytest.raises(InputFileError, match="not well-formed") as err:
        read(path)
    assert err.value.rule == "xml-syntax" and err.value.line == 4


@pytest.mark.parametrize(("text", "limits", "rule"), [
    ("<Message>" + "<a>" * 40 + "</a>" * 40 + "</Message>", ReadLimits(max_depth=32),
     "xml-depth"),
    ("<Message>" + "<b/>" * 50 + "</Message>", ReadLimits(max_elements=20), "xml-size"),
    ("<Message><Child>" + "x" * 500 + "</Child></Message>", ReadLimits(max_text_bytes=100),
     "xml-size"),
    ("<Message>" + " " * 5000 + "</Message>", ReadLimits(max_file_bytes=1000), "file-size"),
])
def test_limits(tmp_path: Path, text: str, limits: ReadLimits, rule: str) -> None:
    with pytest.raises(InputFileError) as err:
        read(write(tmp_path, text), limits)
    assert err.value.rule == rule


def test_wrong_root_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="root element is <EXPSSDA903>"):
        read(write(tmp_path, "<EXPSSDA903/>"))
    with pytest.raises(InputFileError, match="not well-formed"):
        read(write(tmp_path, ""))


def test_records_have_start_lines_text_and_children(tmp_path: Path) -> None:
    path = write(tmp_path, """<?xml version="1.0" encoding="UTF-8"?>
<Message xmlns="urn:x">
  <Header><Year>2023</Year></Header>
  <Children>
    <Child>
      <LAchildID> C1 </LAchildID>
      <Empty/>
    </Child><Child><LAchildID>C&amp;2</LAchildID></Child>
  </Children>
</Message>
""")
    records = read(path)
    assert [(r.tag, r.line) for r in records] == [("Child", 5), ("Child", 8)]
    assert records[0].value("LAchildID") == "C1" and records[0].value("Empty") is None
    assert records[0].find("Empty") is not None and records[0].find("Nope") is None
    assert records[1].value("LAchildID") == "C&2"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3), st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=10)), max_size=15))
def test_start_lines_are_exact(tmp_path: Path, children: list[tuple[int, str]]) -> None:
    """Each record's line is the line its start tag is on, however the file is laid out."""
    lines = ["<Message>"]
    expected = []
    for gap, text in children:
        lines.extend([""] * gap)
        expected.append(len(lines) + 1)
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"<Child><V>{escaped}</V></Child>")
    lines.append("</Message>")
    path = tmp_path / "p.xml"
    path.write_text("\n".join(lines), encoding="utf-8")
    records = read(path)
    assert [r.line for r in records] == expected
    assert [r.value("V") or "" for r in records] == [t.strip() for _, t in children]
