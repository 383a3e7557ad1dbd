"""Stream the records of an openFDA bulk partition without loading the file.

A drug-event-*-of-*.json.zip holds one JSON document, {"meta": {...}, "results": [record, ...]},
of up to a gigabyte or more. `json.load` would need several times that in memory, so the
document is walked with the standard library's decoder: the top-level object key by key, and
the "results" array one element at a time (`JSONDecoder.raw_decode` on a sliding text buffer
refilled in fixed-size chunks). Memory is one chunk plus one record, whatever the file size.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

CHUNK_CHARS = 1 << 20
MAX_VALUE_CHARS = 256 << 20  # a single record larger than this is not a drug/event report
_WHITESPACE = " \t\r\n"
_NUMBER_TAIL = ".eE+-0123456789"


class BulkFormatError(ValueError):
    """The document is not openFDA's {"meta", "results": [...]} shape, or is cut short."""


class JsonArrayStream:
    """Iterate the elements of the top-level "results" array (or of a bare top-level array).

    Other top-level members are decoded whole and kept in `members` (so `meta` is available once
    iteration has passed it; openFDA writes it first).
    """

    def __init__(self, stream: TextIO, *, name: str = "<stream>", array_key: str = "results",
                 chunk_chars: int = CHUNK_CHARS) -> None:  # fmt: skip
        self._stream = stream
        self._name = name
        self._key = array_key
        self._chunk = chunk_chars
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._decoder = json.JSONDecoder()
        self.members: dict[str, Any] = {}
        self.consumed_chars = 0

    # -- buffer
    def _fill(self, at_least: int = 0) -> bool:
        if self._eof:
            return False
        text = self._stream.read(max(self._chunk, at_least))
        if not text:
            self._eof = True
            return False
        if self._pos:
            self.consumed_chars += self._pos
            self._buf = self._buf[self._pos :]
            self._pos = 0
        self._buf += text
        return True

    def _peek(self) -> str:
        """Next non-whitespace character ('' at the end of the document)."""
        while True:
            buf, pos = self._buf, self._pos
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self._fill():
                return ""

    def _expect(self, char: str) -> None:
        found = self._peek()
        if found != char:
            where = self.consumed_chars + self._pos
            raise BulkFormatError(
                f"{self._name}: expected {char!r} at character {where}, found {found or 'end of file'!r}"
            )
        self._pos += 1

    def _value(self) -> Any:
        self._peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if len(self._buf) - self._pos > MAX_VALUE_CHARS:
                    raise BulkFormatError(
                        f"{self._name}: a value exceeds {MAX_VALUE_CHARS} characters"
                    ) from exc
                # incomplete: read at least as much again, so a record far larger than a chunk
                # is re-scanned O(log n) times, not once per chunk
                if self._fill(at_least=len(self._buf) - self._pos):
                    continue
                where = self.consumed_chars + exc.pos
                raise BulkFormatError(
                    f"{self._name}: invalid or truncated JSON at character {where}: {exc.msg}"
                ) from exc
            cut = end == len(self._buf) or self._buf[end] in _NUMBER_TAIL
            if cut and not isinstance(value, dict | list | str) and self._fill():
                continue  # a number cut at the chunk boundary ('2' of '2.5') continues in the next chunk
            self._pos = end
            return value

    # -- document
    def _array(self) -> Iterator[Any]:
        self._expect("[")
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            yield self._value()
            char = self._peek()
            self._pos += 1
            if char == "]":
                return
            if char != ",":
                where = self.consumed_chars + self._pos - 1
                raise BulkFormatError(
                    f"{self._name}: expected ',' or ']' at character {where}, found {char or 'end of file'!r}"
                )

    def __iter__(self) -> Iterator[Any]:
        first = self._peek()
        if first == "[":
            yield from self._array()
            return
        self._expect("{")
        found = False
        if self._peek() == "}":
            self._pos += 1
        else:
            while True:
                key = self._value()
                if not isinstance(key, str):
                    raise BulkFormatError(f"{self._name}: object key {key!r} is not a string")
                self._expect(":")
                if key == self._key and self._peek() == "[":
                    found = True
                    yield from self._array()
                else:
                    self.members[key] = self._value()
                char = self._peek()
                self._pos += 1
                if char == "}":
                    break
                if char != ",":
                    raise BulkFormatError(f"{self._name}: expected ',' or '}}' after member {key!r}")
        if not found:
            raise BulkFormatError(f"{self._name}: no {self._key!r} array in the document")


class BulkFile:
    """One bulk partition (.json.zip with a single JSON member, or a plain .json file).

    Iterating yields the records; `meta` is the document's meta object once it has been read
    (openFDA writes it before "results").
    """

    def __init__(self, path: str | Path, *, chunk_chars: int = CHUNK_CHARS) -> None:
        self.path = Path(path)
        self.chunk_chars = chunk_chars
        self.records_read = 0
        self._stream: JsonArrayStream | None = None

    @property
    def meta(self) -> dict[str, Any]:
        meta = self._stream.members.get("meta") if self._stream else None
        return meta if isinstance(meta, dict) else {}

    @property
    def last_updated(self) -> str | None:
        value = self.meta.get("last_updated")
        return str(value) if value else None

    def _open_binary(self) -> tuple[io.BufferedIOBase, zipfile.ZipFile | None, str]:
        if zipfile.is_zipfile(self.path):
            archive = zipfile.ZipFile(self.path)
            members = [
                i for i in archive.infolist() if not i.is_dir() and i.filename.lower().endswith(".json")
            ]
            if len(members) != 1:
                archive.close()
                raise BulkFormatError(
                    f"{self.path}: expected one .json member, found {[m.filename for m in members]}"
                )
            return archive.open(members[0]), archive, f"{self.path.name}/{members[0].filename}"  # type: ignore[return-value]
        return open(self.path, "rb"), None, self.path.name  # noqa: SIM115 - closed in __iter__

    def __iter__(self) -> Iterator[dict[str, Any]]:
        raw, archive, name = self._open_binary()
        try:
            with io.TextIOWrapper(raw, encoding="utf-8") as text:
                self._stream = JsonArrayStream(text, name=name, chunk_chars=self.chunk_chars)
                for record in self._stream:
                    self.records_read += 1
                    yield record
        finally:
            raw.close()
            if archive is not None:
                archive.close()


def iter_records(path: str | Path, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[dict[str, Any]]:
    """The records of one bulk partition, one at a time."""
    yield from BulkFile(path, chunk_chars=chunk_chars)
