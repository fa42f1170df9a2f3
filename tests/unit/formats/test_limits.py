"""Bounded reading: size and line limits hold while streaming; only UTF-8 text is accepted."""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import pytest

from trialvault.errors import InputFileError
from trialvault.formats.limits import ReadLimits, decode_utf8, read_bounded, read_file_bounded


class EndlessLine(io.RawIOBase):
    """A stream of `size` bytes of one CSV header then one endless line, made on the fly (a
    2 GB line without 2 GB of memory or disk). Counts what the reader pulled."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.served = 0
        self.prefix = b"CHILD,SEX\n"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.remaining)
        if n <= 0:
            return 0
        chunk = (self.prefix + b"a" * n)[:n]
        self.prefix = self.prefix[n:]
        buffer[:n] = chunk
        self.remaining -= n
        self.served += n
        return n


def test_a_2gb_line_is_refused_after_reading_about_the_limit() -> None:
    stream = io.BufferedReader(EndlessLine(2 * 1024**3), buffer_size=1024 * 1024)
    limits = ReadLimits(max_file_bytes=4 * 1024**3)
    with pytest.raises(InputFileError) as err:
        read_bounded(stream, "episodes.csv", limits)
    assert err.value.line == 2 and err.value.rule == "line-length"
    assert "episodes.csv" in str(err.value)
    # Refused within a couple of chunks of the 1 MiB line limit, not after 2 GB.
    assert stream.raw.served < 16 * 1024 * 1024  # type: ignore[attr-defined]


def test_line_limit_names_the_offending_line() -> None:
    data = b"a,b\n" + b"1,2\n" * 5 + b"x" * 50 + b"\n1,2\n"
    with pytest.raises(InputFileError) as err:
        read_bounded(io.BytesIO(data), "f.csv", ReadLimits(max_line_bytes=20))
    assert err.value.line == 7


def test_file_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"a\n" * 100)
    with pytest.raises(InputFileError, match="larger than the limit"):
        read_file_bounded(path, ReadLimits(max_file_bytes=50))
    with pytest.raises(InputFileError, match="larger than the limit"):
        read_bounded(io.BytesIO(b"a\n" * 100), "s.csv", ReadLimits(max_file_bytes=50))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot read file"):
        read_file_bounded(tmp_path / "nope.csv")


@pytest.mark.parametrize(("bom", "name"), [(codecs.BOM_UTF16_LE, "UTF-16"),
                                           (codecs.BOM_UTF16_BE, "UTF-16"),
                                           (codecs.BOM_UTF32_LE, "UTF-32")])
def test_foreign_byte_order_marks_are_refused(bom: bytes, name: str) -> None:
    with pytest.raises(InputFileError, match=name) as err:
        decode_utf8(bom + "CHILD\n".encode("utf-16-le"), "h.csv")
    assert err.value.rule == "encoding"


def test_latin1_is_refused_with_its_line() -> None:
    data = "CHILD,NAME\n1,ok\n2,Zo\u00eb\n".encode("latin-1")
    with pytest.raises(InputFileError, match="not valid UTF-8") as err:
        decode_utf8(data, "h.csv")
    assert err.value.line == 3
    # The message never repeats the bytes it could not read.
    assert "Zo" not in str(err.value)


def test_utf8_with_and_without_bom_and_nul() -> None:
    assert decode_utf8(codecs.BOM_UTF8 + b"a,b\n", "x") == "a,b\n"
    assert decode_utf8(b"a,b\n", "x") == "a,b\n"
    with pytest.raises(InputFileError, match="NUL") as err:
        decode_utf8(b"a,b\n1,\x002\n", "x")
    assert err.value.line == 2


# --- caps of issue 14: per-record element count, attribute bytes, decoded size, CSV fields ---

def _xml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "return.xml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_record_with_too_many_nested_elements_is_refused_while_reading(tmp_path: Path) -> None:
    from trialvault.formats.xmlfile import iter_records

    path = _xml(tmp_path, "<Message><Child>" + "<e/>" * 5000 + "</Child></Message>")
    with pytest.raises(InputFileError) as err:
        list(iter_records(path, "Message", frozenset({"Child"}),
                          ReadLimits(max_record_elements=1000)))
    assert err.value.rule == "xml-record-size" and "return.xml" in str(err.value)
    assert "<Child>" in str(err.value) and "1000" in str(err.value)
    # Records under the cap read; the count starts again at each record.
    fine = _xml(tmp_path, "<Message>" + ("<Child>" + "<e/>" * 600 + "</Child>") * 3 + "</Message>")
    assert len(list(iter_records(fine, "Message", frozenset({"Child"}),
                                 ReadLimits(max_record_elements=1000)))) == 3


def test_oversized_attributes_are_refused_naming_the_line(tmp_path: Path) -> None:
    from trialvault.formats.xmlfile import iter_records

    path = _xml(tmp_path, '<Message>\n<Child a="' + "x" * 5000 + '"/></Message>')
    with pytest.raises(InputFileError) as err:
        list(iter_records(path, "Message", frozenset({"Child"}), ReadLimits()))
    assert err.value.rule == "xml-attributes" and err.value.line == 2
    assert "x" * 20 not in str(err.value)  # never a value from the file


def test_total_decoded_text_is_capped(tmp_path: Path) -> None:
    from trialvault.formats.xmlfile import iter_records

    path = _xml(tmp_path, "<Message>" + "<Child>abcdefghij</Child>" * 300 + "</Message>")
    with pytest.raises(InputFileError) as err:
        list(iter_records(path, "Message", frozenset({"Child"}),
                          ReadLimits(max_decoded_bytes=1000)))
    assert err.value.rule == "xml-decoded-size"


def test_an_oversized_csv_field_is_refused_naming_its_line(tmp_path: Path) -> None:
    from trialvault.formats.csvfile import read_csv_table

    path = tmp_path / "episodes.csv"
    path.write_text("CHILD,DECOM\n1,01/01/2020\n2,\"" + "y" * 3000 + "\"\n", encoding="utf-8")
    with pytest.raises(InputFileError) as err:
        read_csv_table(path, ["CHILD", "DECOM"], limits=ReadLimits(max_field_bytes=1000))
    assert err.value.rule == "field-size" and err.value.line == 3
    assert "y" * 20 not in str(err.value)


def test_every_limit_is_in_the_documented_table() -> None:
    import dataclasses

    from trialvault.formats import limits

    doc = limits.__doc__ or ""
    for field in dataclasses.fields(ReadLimits):
        assert f"| {field.name} " in doc, field.name
