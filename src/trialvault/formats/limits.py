"""Size limits and the bounded, encoding-checked reading every reader goes through.

A statutory return is a few megabytes; a hostile or broken file can be a 2 GB single line, a
UTF-16 export from Excel, binary junk, a record with millions of nested elements or an element
with megabytes of attributes. Every limit is checked as the bytes arrive, so a bad file is
refused after at most one limit's worth of input, and the refusal names the file, the line (or
XML record) and the limit (`rule`), never a value from the file.

All limits live here, in `ReadLimits` (defaults far above any real return):

| limit                 | applies to | default        | refused as (rule)      |
|-----------------------|------------|----------------|------------------------|
| max_file_bytes        | CSV, XML   | 1 GiB          | file-size              |
| max_line_bytes        | CSV        | 1 MiB          | line-length            |
| max_field_bytes       | CSV        | 64 KiB         | field-size             |
| max_depth             | XML        | 32 levels      | xml-depth              |
| max_elements          | XML        | 50,000,000     | xml-size               |
| max_record_elements   | XML        | 100,000        | xml-record-size        |
| max_text_bytes        | XML        | 64 KiB         | xml-size               |
| max_attribute_bytes   | XML        | 4 KiB          | xml-attributes         |
| max_decoded_bytes     | XML        | 1 GiB          | xml-decoded-size       |

- *record*: one record element (a CIN `<Child>`, an SSDA903 `<CHILD>`) with everything nested
  in it; a reader holds one record in memory at a time, so this bounds its memory.
- *attribute bytes*: all attribute names and values of one element (the DfE's XML has none).
- *decoded size*: the text the XML parser hands over for the whole file (entities are refused
  outright, so it cannot grow much past the file size; the cap holds whatever the parser does).
- *field*: one CSV cell, after the CSV quoting is undone.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from trialvault.errors import InputFileError

_CHUNK = 4 * 1024 * 1024
_NEWLINE = 10


@dataclass(frozen=True)
class ReadLimits:
    """Upper bounds a reader enforces (the table in the module doc)."""

    max_file_bytes: int = 1024**3
    """Largest file read (bytes)."""
    max_line_bytes: int = 1024**2
    """Longest CSV line (bytes). Not applied to XML, whose returns are often one line."""
    max_field_bytes: int = 64 * 1024
    """Longest CSV field (characters, once unquoted)."""
    max_depth: int = 32
    """Deepest XML element nesting."""
    max_elements: int = 50_000_000
    """Most XML elements in one file."""
    max_record_elements: int = 100_000
    """Most XML elements in one record (the record element and all it holds)."""
    max_text_bytes: int = 64 * 1024
    """Longest text content of one XML element."""
    max_attribute_bytes: int = 4 * 1024
    """Most bytes of attribute names and values on one XML element."""
    max_decoded_bytes: int = 1024**3
    """Most text (characters) the XML parser decodes from one file."""


DEFAULT_LIMITS = ReadLimits()

# Byte-order marks of encodings we refuse, checked before UTF-8 decoding so the message can say
# what the file is (Excel's "Unicode text" export is UTF-16 LE).
_FOREIGN_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def read_bounded(stream: BinaryIO, name: str, limits: ReadLimits = DEFAULT_LIMITS, *,
                 check_lines: bool = True) -> bytes:
    """All bytes of `stream`, refusing a file above `max_file_bytes` or, when `check_lines`,
    a line above `max_line_bytes` as soon as the offending bytes are seen."""
    buffer = bytearray()
    line_no = 1          # line number of the line being read at the start of each chunk
    current = 0          # bytes of that line seen so far
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        if len(buffer) + len(chunk) > limits.max_file_bytes:
            raise InputFileError(f"file is larger than the limit of {limits.max_file_bytes} "
                                 "bytes", file=name, rule="file-size")
        if check_lines:
            line_no, current = _check_lines(chunk, name, limits.max_line_bytes, line_no, current)
        buffer += chunk
    return bytes(buffer)


def _check_lines(chunk: bytes, name: str, limit: int, line_no: int, current: int
                 ) -> tuple[int, int]:
    import numpy as np  # CSV line checks only: the XML readers never load numpy

    arr = np.frombuffer(chunk, dtype=np.uint8)
    newlines = np.flatnonzero(arr == _NEWLINE)
    if newlines.size == 0:
        current += len(chunk)
        if current > limit:
            _too_long(name, line_no, limit)
        return line_no, current
    first = current + int(newlines[0])
    if first > limit:
        _too_long(name, line_no, limit)
    if newlines.size > 1:
        lengths = np.diff(newlines) - 1
        worst = int(np.argmax(lengths))
        if int(lengths[worst]) > limit:
            _too_long(name, line_no + worst + 1, limit)
    line_no += int(newlines.size)
    current = len(chunk) - int(newlines[-1]) - 1
    if current > limit:
        _too_long(name, line_no, limit)
    return line_no, current


def _too_long(name: str, line: int, limit: int) -> None:
    raise InputFileError(f"line is longer than the limit of {limit} bytes (not a statutory "
                         "return, or a broken export)", file=name, line=line, rule="line-length")


def read_file_bounded(path: Path, limits: ReadLimits = DEFAULT_LIMITS, *,
                      check_lines: bool = True) -> bytes:
    """`read_bounded` on a file, with missing or unreadable files as an `InputFileError`."""
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise InputFileError(f"file is larger than the limit of {limits.max_file_bytes} "
                                 "bytes", file=path.name, rule="file-size")
        with path.open("rb") as handle:
            return read_bounded(handle, path.name, limits, check_lines=check_lines)
    except OSError as exc:
        raise InputFileError(f"cannot read file ({exc.strerror})", file=str(path)) from None


def decode_utf8(data: bytes, name: str) -> str:
    """Text of a UTF-8 file (with or without a byte-order mark); anything else is refused."""
    for bom, encoding in _FOREIGN_BOMS:
        if data.startswith(bom):
            raise InputFileError(f"file is {encoding} encoded; save it as UTF-8 (CSV UTF-8)",
                                 file=name, rule="encoding")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
        # Name the byte and what Windows-1252 (Excel's "CSV" on Windows) makes of it, e.g.
        # 0xA3 = "£", so the analyst knows which export setting to change; never the text around.
        guess = bytes([byte]).decode("cp1252", errors="replace")
        legacy = f" (\"{guess}\" in Windows-1252)" if guess.isprintable() and guess != "\ufffd" else ""
        raise InputFileError(f"file is not valid UTF-8: byte 0x{byte:02X}{legacy} is not UTF-8 "
                             "(the file was probably saved as Windows-1252 or Latin-1); save it "
                             "as UTF-8 (in Excel: \"CSV UTF-8\")", file=name, line=line,
                             rule="encoding") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise InputFileError("file holds NUL bytes (binary data, not a text export)", file=name,
                             line=text.count("\n", 0, nul) + 1, rule="encoding")
    return text
