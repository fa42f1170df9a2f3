"""Hardened, streaming XML reading with the line where each element starts.

Only through `defusedxml`: DTDs (and so entity expansion, "billion laughs" and external entities)
are forbidden outright, and on top of that the file size, nesting depth, element count and text
length are capped while parsing. The file is fed to expat in chunks and each *record* element
(e.g. a CIN `Child`) is handed over as a small tree as soon as it closes, so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from trialvault.errors import InputFileError
from trialvault.formats.limits import DEFAULT_LIMITS, ReadLimits

# Bytes fed to expat at a time: every record closed in a chunk is held until the chunk is done,
# and a record's nodes cost several times its text, so chunks stay small.
_CHUNK = 64 * 1024


class Node:
    """One XML element: local tag name, start line, stripped text and child elements."""

    __slots__ = ("children", "line", "tag", "text")

    def __init__(self, tag: str, line: int) -> None:
        self.tag = tag
        self.line = line
        self.text: str | None = None
        self.children: list[Node] = []

    def find(self, tag: str) -> Node | None:
        for child in self.children:
            if child.tag == tag:
                return child
        return None

    def findall(self, tag: str) -> list[Node]:
        return [c for c in self.children if c.tag == tag]

    def value(self, tag: str) -> str | None:
        """Text of the first child `tag` (None when absent or empty)."""
        child = self.find(tag)
        return child.text if child is not None else None


class _Target:
    """Expat handlers that build Nodes only inside record elements and enforce the limits.

    They are installed straight on defusedxml's expat parser (its DTD/entity guards stay in
    place); skipping ElementTree's own per-element wrappers makes reading about twice as fast.
    """

    def __init__(self, name: str, root: str, records: frozenset[str], limits: ReadLimits) -> None:
        self.name, self.root, self.records, self.limits = name, root, records, limits
        self.expat: Any = None
        self.depth = 0
        self.elements = 0
        self.stack: list[Node] = []
        self.texts: list[list[str]] = []
        self.text_len = 0
        self.done: list[Node] = []
        self.root_seen = False
        self.max_depth, self.max_elements = limits.max_depth, limits.max_elements
        self.max_text = limits.max_text_bytes
        self.record_elements = 0
        self.record_tag = ""
        self.decoded = 0

    def _line(self) -> int:
        return int(self.expat.CurrentLineNumber)

    def start(self, tag: str, attrib: Any) -> None:
        depth = self.depth = self.depth + 1
        self.elements += 1
        if "}" in tag:
            tag = tag.rsplit("}", 1)[1]
        if depth > self.max_depth:
            raise InputFileError(f"XML nesting deeper than {self.max_depth} levels",
                                 file=self.name, line=self._line(), rule="xml-depth")
        if self.elements > self.max_elements:
            raise InputFileError(f"more than {self.max_elements} XML elements",
                                 file=self.name, line=self._line(), rule="xml-size")
        if depth == 1:
            self.root_seen = True
            if tag != self.root:
                raise InputFileError(f"root element is <{tag}>, expected <{self.root}>",
                                     file=self.name, line=self._line(), rule="xml-root")
        if attrib:
            # Expat hands attributes over as a dict, or as a flat [name, value, ...] list when
            # the parser orders them.
            size = (sum(len(k) + len(v) for k, v in attrib.items()) if isinstance(attrib, dict)
                    else sum(len(x) for x in attrib))
            if size > self.limits.max_attribute_bytes:
                raise InputFileError(f"XML element attributes longer than "
                                     f"{self.limits.max_attribute_bytes} bytes", file=self.name,
                                     line=self._line(), rule="xml-attributes")
        stack = self.stack
        if stack or tag in self.records:
            if not stack:
                self.record_elements = 0
                self.record_tag = tag
            self.record_elements += 1
            if self.record_elements > self.limits.max_record_elements:
                raise InputFileError(f"XML record <{self.record_tag}> holds more than "
                                     f"{self.limits.max_record_elements} elements",
                                     file=self.name, line=self._line(),
                                     rule="xml-record-size")
            node = Node(tag, self.expat.CurrentLineNumber)
            if stack:
                stack[-1].children.append(node)
            stack.append(node)
            self.texts.append([])
            self.text_len = 0

    def data(self, text: str) -> None:
        self.decoded += len(text)
        if self.decoded > self.limits.max_decoded_bytes:
            raise InputFileError(f"XML file decodes to more than {self.limits.max_decoded_bytes}"
                                 " characters of text", file=self.name, line=self._line(),
                                 rule="xml-decoded-size")
        if self.texts:
            self.texts[-1].append(text)
            self.text_len += len(text)
            if self.text_len > self.max_text:
                raise InputFileError(f"XML element text longer than {self.max_text}"
                                     " characters", file=self.name, line=self._line(),
                                     rule="xml-size")

    def end(self, tag: str) -> None:
        self.depth -= 1
        if not self.stack:
            return
        node = self.stack.pop()
        parts = self.texts.pop()
        if parts:
            text = (parts[0] if len(parts) == 1 else "".join(parts)).strip()
            node.text = text or None
        self.text_len = 0
        if not self.stack:
            self.done.append(node)

    def close(self) -> None:
        return None


def iter_records(path: Path, root: str, records: frozenset[str],
                 limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[Node]:
    """Yield each element whose tag is in `records` (outermost only) from the XML file `path`,
    whose root element must be `root`. Refuses DTDs, entities, oversize or malformed input with
    an `InputFileError` naming file and line."""
    name = path.name
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except OSError as exc:
        raise InputFileError(f"cannot read file ({exc.strerror})", file=str(path)) from None
    if size > limits.max_file_bytes:
        handle.close()
        raise InputFileError(f"file is larger than the limit of {limits.max_file_bytes} bytes",
                             file=name, rule="file-size")
    target = _Target(name, root, records, limits)
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    expat = parser.parser
    target.expat = expat
    expat.StartElementHandler = target.start
    expat.EndElementHandler = target.end
    expat.CharacterDataHandler = target.data
    read = 0
    with handle:
        while True:
            chunk = handle.read(_CHUNK)
            read += len(chunk)
            if read > limits.max_file_bytes:
                raise InputFileError(f"file is larger than the limit of {limits.max_file_bytes}"
                                     " bytes", file=name, rule="file-size")
            try:
                if chunk:
                    parser.feed(chunk)
                else:
                    parser.close()
            except ParseError as exc:
                line = exc.position[0] if getattr(exc, "position", None) else None
                reason = str(exc).split(":")[0]
                raise InputFileError(f"not well-formed XML ({reason}; truncated or corrupted "
                                     "file?)", file=name, line=line, rule="xml-syntax") from None
            except DefusedXmlException as exc:
                raise InputFileError(f"XML uses a forbidden construct ({type(exc).__name__}: "
                                     "DTDs and entities are refused)", file=name,
                                     line=_safe_line(parser), rule="xml-forbidden") from None
            yield from target.done
            target.done.clear()
            if not chunk:
                break
    if not target.root_seen:
        raise InputFileError("file holds no XML element", file=name, rule="xml-syntax")


def _safe_line(parser: Any) -> int | None:
    try:
        return int(parser.parser.CurrentLineNumber)
    except (AttributeError, TypeError, ValueError):
        return None
