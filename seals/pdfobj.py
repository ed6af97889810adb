"""A small PDF reader for the fast sealer: the newest xref table, the trailer and a few dictionaries.

Written by hand because the sealer's per-document budget is a fraction of a millisecond: opening a
file with pikepdf or pyHanko parses and indexes every object, while sealing needs three or four
dictionaries (catalog, page tree, page, form) and the cross-reference entries that locate them.
Only what the hub's own renderer writes, and what ISO 32000-1 allows around it, is supported:
classic cross-reference tables (§7.5.4) with any number of incremental updates (§7.5.6). A file
with cross-reference streams is refused (:class:`PdfUnsupported`) so the caller can normalise it.
Values keep their exact source bytes so a dictionary can be rewritten without re-encoding the
members it does not change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

WHITESPACE = b"\x00\t\n\x0c\r "  # ISO 32000-1 §7.2.2 Table 1
DELIMITERS = b"()<>[]{}/%"
_OBJ_HEADER = re.compile(rb"\s*(\d+)\s+(\d+)\s+obj\b")
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF")
_SUBSECTION = re.compile(rb"(\d+) (\d+)\s*?(?:\r\n|\r|\n| \r| \n)")
MAX_DEPTH = 32  # nesting bound: hostile files must not exhaust the stack
MAX_PREV = 64  # incremental updates followed before giving up


class PdfSyntaxError(ValueError):
    """The bytes are not a PDF this reader can follow (damaged, truncated, or not a PDF at all)."""


class PdfUnsupported(ValueError):
    """A valid PDF feature the fast path does not handle (cross-reference streams)."""


@dataclass(frozen=True)
class Ref:
    """An indirect reference ``num gen R`` (§7.3.10)."""

    num: int
    gen: int

    def pdf(self) -> bytes:
        return b"%d %d R" % (self.num, self.gen)


class Name(str):
    """A name object without its solidus (§7.3.5); escapes (#xx) are kept as written."""

    __slots__ = ()


PdfValue = Union[None, bool, int, float, bytes, Name, Ref, list["PdfValue"], "PdfDict"]


class PdfDict:
    """A dictionary whose members remember their source bytes, so rewriting keeps them verbatim."""

    __slots__ = ("raw", "values")

    def __init__(self) -> None:
        self.values: dict[str, PdfValue] = {}
        self.raw: dict[str, bytes] = {}

    def get(self, key: str) -> PdfValue:
        return self.values.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def serialise(self, replace: dict[str, bytes] | None = None, drop: tuple[str, ...] = ()) -> bytes:
        """``<< ... >>`` with members in source order, ``replace`` values substituted or appended."""
        replace = replace or {}
        parts = [b"<<"]
        for key, raw in self.raw.items():
            if key in drop:
                continue
            parts.append(b"/" + key.encode("latin-1") + b" " + replace.get(key, raw))
        parts.extend(b"/" + k.encode("latin-1") + b" " + v for k, v in replace.items() if k not in self.raw)
        parts.append(b">>")
        return b" ".join(parts)


_TOKEN = re.compile(
    rb"(?:[\x00\t\n\x0c\r ]+|%[^\r\n]*)*"  # whitespace and comments (§7.2.2, §7.2.3)
    rb"(?:(?P<ref>(\d+)[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+R(?![^\x00\t\n\x0c\r ()<>\[\]{}/%]))"
    rb"|(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))"
    rb"|(?P<name>/[^\x00\t\n\x0c\r ()<>\[\]{}/%]*)"
    rb"|(?P<open><<|\[)"
    rb"|(?P<close>>>|\])"
    rb"|(?P<hex><[^<>]*>)"
    rb"|(?P<lit>\()"
    rb"|(?P<kw>true|false|null))"
)
_KEYWORDS: dict[bytes, PdfValue] = {b"true": True, b"false": False, b"null": None}


class _Frame:
    __slots__ = ("container", "key", "start")

    def __init__(self, container: PdfDict | list[PdfValue]) -> None:
        self.container = container
        self.key: Name | None = None
        self.start = 0


class Lexer:
    """Parses one value at a time from ``data`` starting at ``pos`` (§7.3), without recursion."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def skip_space(self) -> None:
        match = _TOKEN.match(self.data, self.pos)
        if match is not None and match.lastgroup is not None:
            self.pos = match.start(match.lastgroup)
        else:  # only whitespace (or nothing) is left
            while self.pos < len(self.data) and self.data[self.pos] in WHITESPACE:
                self.pos += 1

    def value(self) -> PdfValue:  # noqa: C901, PLR0912, PLR0915 - one token switch reads best in one place
        data = self.data
        stack: list[_Frame] = []
        while True:
            match = _TOKEN.match(data, self.pos)
            kind = match.lastgroup if match is not None else None
            if match is None or kind is None:
                if self.pos >= len(data) or not data[self.pos :].strip(WHITESPACE):
                    raise PdfSyntaxError("unexpected end of file")
                raise PdfSyntaxError(f"unexpected byte {data[self.pos : self.pos + 1]!r} at offset {self.pos}")
            start = match.start(kind)
            self.pos = match.end()
            value: PdfValue
            if kind == "open":
                if len(stack) >= MAX_DEPTH:
                    raise PdfSyntaxError("objects nested too deeply")
                container: PdfDict | list[PdfValue] = PdfDict() if match.group(kind) == b"<<" else []
                frame = _Frame(container)
                if stack:
                    self._begin(stack[-1], start)
                stack.append(frame)
                continue
            if kind == "close":
                if not stack:
                    raise PdfSyntaxError(f"unbalanced {match.group(kind)!r} at offset {start}")
                frame = stack.pop()
                closing_dict = match.group(kind) == b">>"
                if closing_dict != isinstance(frame.container, PdfDict) or (closing_dict and frame.key is not None):
                    raise PdfSyntaxError(f"mismatched {match.group(kind)!r} at offset {start}")
                value = frame.container
            elif kind == "ref":
                value = Ref(int(match.group(2)), int(match.group(3)))
            elif kind == "num":
                text = match.group(kind)
                value = float(text) if b"." in text else int(text)
            elif kind == "name":
                value = Name(match.group(kind)[1:].decode("latin-1"))
            elif kind == "hex":
                value = match.group(kind)
            elif kind == "lit":
                self.pos = start
                value = self._literal()
            else:
                value = _KEYWORDS[match.group(kind)]
            if not stack:
                return value
            top = stack[-1]
            if isinstance(top.container, list):
                top.container.append(value)
            elif top.key is None:
                if not isinstance(value, Name):
                    raise PdfSyntaxError(f"dictionary key is not a name at offset {start}")
                top.key = value
                top.start = -1
            else:
                if top.start < 0:
                    top.start = start
                top.container.values[top.key] = value
                top.container.raw[top.key] = data[top.start : self.pos]
                top.key = None

    @staticmethod
    def _begin(frame: _Frame, start: int) -> None:
        """A container begins as a dictionary member's value: remember where its bytes start."""
        if isinstance(frame.container, PdfDict):
            if frame.key is None:
                raise PdfSyntaxError(f"dictionary key is not a name at offset {start}")
            frame.start = start

    def _literal(self) -> bytes:
        data, start, depth, pos = self.data, self.pos, 0, self.pos
        n = len(data)
        while pos < n:
            c = data[pos]
            if c == 0x5C:  # backslash: the next byte is escaped
                pos += 2
                continue
            if c == 0x28:
                depth += 1
            elif c == 0x29:
                depth -= 1
                if depth == 0:
                    self.pos = pos + 1
                    return data[start : pos + 1]
            pos += 1
        raise PdfSyntaxError("unterminated string")


@dataclass(frozen=True)
class _Section:
    first: int
    count: int
    table: int  # offset of the first 20-byte entry


class PdfReader:
    """Locates objects through the newest cross-reference table and its ``/Prev`` chain (§7.5.4-6)."""

    def __init__(self, data: bytes) -> None:
        if not data.startswith(b"%PDF-"):
            raise PdfSyntaxError("not a PDF file (no %PDF- header)")
        self.data = data
        tail_at = max(0, len(data) - 2048)
        matches = list(_STARTXREF.finditer(data, tail_at))
        if not matches:
            raise PdfSyntaxError("no startxref at the end of the file (truncated?)")
        self.startxref = int(matches[-1].group(1))
        self.trailer, sections = self._xref_at(self.startxref)
        self._tables: list[list[_Section]] = [sections]
        self._objects: dict[Ref, PdfValue] = {}
        self._trailers = [self.trailer]
        if "XRefStm" in self.trailer:
            raise PdfUnsupported("hybrid cross-reference file (/XRefStm)")

    def _xref_at(self, offset: int) -> tuple[PdfDict, list[_Section]]:
        data = self.data
        if offset >= len(data) or not data.startswith(b"xref", offset):
            lexer = Lexer(data, offset)
            if offset < len(data) and _OBJ_HEADER.match(data, offset):
                raise PdfUnsupported("cross-reference streams (§7.5.8)")
            raise PdfSyntaxError(f"no cross-reference table at offset {offset} (startxref is wrong)")
        pos = offset + 4
        sections: list[_Section] = []
        lexer = Lexer(data, pos)
        while True:
            lexer.skip_space()
            if data.startswith(b"trailer", lexer.pos):
                lexer.pos += len(b"trailer")
                trailer = lexer.value()
                if not isinstance(trailer, PdfDict):
                    raise PdfSyntaxError("trailer is not a dictionary")
                return trailer, sections
            match = _SUBSECTION.match(data, lexer.pos)
            if not match:
                raise PdfSyntaxError(f"malformed cross-reference subsection at offset {lexer.pos}")
            first, count = int(match.group(1)), int(match.group(2))
            table = match.end()
            if table + 20 * count > len(data):
                raise PdfSyntaxError("cross-reference table runs past the end of the file")
            sections.append(_Section(first, count, table))
            lexer.pos = table + 20 * count

    def _sections(self, depth: int) -> list[_Section] | None:
        while depth >= len(self._tables):
            prev = self._trailers[-1].get("Prev")
            if prev is None:
                return None
            if not isinstance(prev, int) or len(self._tables) >= MAX_PREV:
                raise PdfSyntaxError("bad /Prev chain")
            trailer, sections = self._xref_at(prev)
            self._tables.append(sections)
            self._trailers.append(trailer)
        return self._tables[depth]

    def offset_of(self, ref: Ref) -> int | None:
        """Byte offset of ``ref``'s newest definition; None if free or absent (§7.5.4)."""
        depth = 0
        while (sections := self._sections(depth)) is not None:
            for s in sections:
                if s.first <= ref.num < s.first + s.count:
                    at = s.table + 20 * (ref.num - s.first)
                    entry = self.data[at : at + 18]
                    if entry[17:18] == b"f":
                        return None
                    if entry[17:18] != b"n":
                        raise PdfSyntaxError(f"malformed cross-reference entry for object {ref.num}")
                    return int(entry[:10])
            depth += 1
        return None

    def resolve(self, value: PdfValue) -> PdfValue:
        """Follow ``value`` if it is a reference (§7.3.10); a missing object is null."""
        if not isinstance(value, Ref):
            return value
        if value in self._objects:
            return self._objects[value]
        offset = self.offset_of(value)
        if offset is None:
            return None
        header = _OBJ_HEADER.match(self.data, offset)
        if not header or int(header.group(1)) != value.num:
            raise PdfSyntaxError(f"object {value.num} is not where the cross-reference table says")
        resolved = self._objects[value] = Lexer(self.data, header.end()).value()
        return resolved

    def dict(self, value: PdfValue, what: str) -> PdfDict:
        resolved = self.resolve(value)
        if not isinstance(resolved, PdfDict):
            raise PdfSyntaxError(f"{what} is not a dictionary")
        return resolved

    def page_ref(self, index: int) -> Ref:
        """The reference of page ``index`` (0-based), walking the page tree (§7.7.3)."""
        catalog = self.dict(self.trailer.get("Root"), "the catalog (/Root)")
        node_ref = catalog.get("Pages")
        remaining = index
        for _ in range(MAX_DEPTH):
            node = self.dict(node_ref, "a page tree node")
            kids = self.resolve(node.get("Kids"))
            if not isinstance(kids, list):
                raise PdfSyntaxError("page tree node without /Kids")
            for kid in kids:
                if not isinstance(kid, Ref):
                    raise PdfSyntaxError("page tree kid is not a reference")
                child = self.dict(kid, "a page tree kid")
                if child.get("Type") == "Page":
                    if remaining == 0:
                        return kid
                    remaining -= 1
                    continue
                count = self.resolve(child.get("Count"))
                if not isinstance(count, int):
                    raise PdfSyntaxError("page tree node without /Count")
                if remaining < count:
                    node_ref = kid
                    break
                remaining -= count
            else:
                raise PdfSyntaxError(f"the document has no page {index + 1}")
        raise PdfSyntaxError("page tree nested too deeply")
