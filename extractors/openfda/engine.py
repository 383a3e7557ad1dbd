"""An in-memory openFDA drug/event query engine, faithful to the server's observable behaviour.

One engine answers both the offline client (in-process) and the local HTTP test server, so both
return the same status, headers and body bytes. Behaviour follows FDA/openfda `api/faers`
(`api_request.js` parameter checks, `elasticsearch_query.js` query rules, `traversal.js` Link
header) as summarised in the shared `openfda-api-behaviour.md`:

- parameters `search`, `count`, `limit`, `skip`, `sort`, `search_after` only, with the server's
  literal 400 messages;
- search: default order `_uid` (here the safetyreportid), `skip`/`limit`, `search_after` cursors
  and the `Link: <...>; rel="next"` header;
- count: document counts per term (desc, ties by term), cut to `limit`; date fields give daily
  `{"time", "count"}` buckets;
- 404 `No matches found!` / `Nothing to count`;
- query errors the real server leaves to Elasticsearch come back as 500 `SERVER_ERROR`.

Matching: `.exact` fields compare whole values (case-sensitive, like a keyword field); other fields
match lower-cased word tokens (quoted values as phrases). Dotted paths descend through lists.
"""

from __future__ import annotations

import gzip
import html
import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cmp_to_key
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

DRUG_EVENT_PATH = "/drug/event.json"
EXPECTED_PARAMS = ("search", "count", "limit", "skip", "sort", "search_after")
MAX_SKIP = 25000
MAX_SEARCH_LIMIT = 1000
MAX_COUNT_LIMIT = 1000
LIMITLESS_COUNT_FIELDS = ("openfda.generic_name", "openfda.brand_name", "openfda.substance_name", "drug.product_ndc")
SUPPORTED_QUERY_RE = re.compile(r"^[0-9a-zA-Z@%/',._:()\"\[\]{}\-+><= ]+$")
# The server's DATE_FIELDS that concern drug/event: counting one of these gives daily buckets.
DATE_FIELDS = frozenset(
    {
        "drugstartdate",
        "drugenddate",
        "patient.patientdeath.patientdeathdate",
        "patientdeathdate",
        "receiptdate",
        "receivedate",
        "transmissiondate",
    }
)
META = {
    "disclaimer": "Do not rely on openFDA to make decisions regarding medical care. While we make every effort "
    "to ensure that data is accurate, you should assume all results are unvalidated. We may limit or "
    "otherwise restrict your access to the API in line with our Terms of Service.",
    "terms": "https://open.fda.gov/terms/",
    "license": "https://open.fda.gov/license/",
}
UID = "_uid"
_TOKEN_RE = re.compile(r"\w+")
_DATE_RE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")
_DAY_RE = re.compile(r"^\d{8}$")
_MISSING_HIGH = 9223372036854775807
_MISSING_LOW = -9223372036854775808


class EngineResponse(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


class QuerySyntaxError(ValueError):
    """A search the real server would hand to Elasticsearch, which would reject it (-> 500)."""


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------------------------------
# Query AST and parser


@dataclass(frozen=True)
class Term:
    field: str
    value: str
    phrase: bool = False


@dataclass(frozen=True)
class Range:
    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True)
class Exists:
    field: str


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class And:
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class MatchAll:
    pass


Node = Term | Range | Exists | Not | And | Or | MatchAll


class _Lexer:
    """Splits a query string into '(' ')' AND OR NOT and clause tokens. '+' counts as a space."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def tokens(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch.isspace() or ch == "+":
                self.pos += 1
            elif ch == "(":
                out.append(("(", None))
                self.pos += 1
            elif ch == ")":
                out.append((")", None))
                self.pos += 1
            elif ch == "-" and self.pos + 1 < len(text) and not text[self.pos + 1].isspace():
                out.append(("NOT", None))
                self.pos += 1
            else:
                out.extend(self._clause())
        return out

    def _read_until(self, stops: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops and not self.text[self.pos].isspace():
            self.pos += 1
        return self.text[start : self.pos]

    def _quoted(self) -> str:
        assert self.text[self.pos] == '"'
        self.pos += 1
        buf = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                buf.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == '"':
                self.pos += 1
                return "".join(buf)
            buf.append(ch)
            self.pos += 1
        raise QuerySyntaxError(f"unterminated phrase in query {self.text!r}")

    def _clause(self) -> list[tuple[str, Any]]:
        if self.text[self.pos] == '"':
            return [("CLAUSE", Term("", self._quoted(), phrase=True))]
        word = self._read_until("+()\":")
        if word in ("AND", "OR", "NOT") and (self.pos >= len(self.text) or self.text[self.pos] != ":"):
            return [(word, None)]
        if self.pos < len(self.text) and self.text[self.pos] == ":":
            self.pos += 1
            return self._field_value(word)
        if not word:
            raise QuerySyntaxError(f"unexpected {self.text[self.pos]!r} at {self.pos} in query {self.text!r}")
        return [("CLAUSE", Term("", word))]

    def _field_value(self, field: str) -> list[tuple[str, Any]]:
        if not field:
            raise QuerySyntaxError(f"missing field name before ':' in query {self.text!r}")
        if self.pos >= len(self.text):
            raise QuerySyntaxError(f"missing value after {field}: in query {self.text!r}")
        ch = self.text[self.pos]
        if field in ("_exists_", "_missing_"):
            name = self._quoted() if ch == '"' else self._read_until("+()\"")
            node: Node = Exists(name)
            return [("CLAUSE", node if field == "_exists_" else Not(node))]
        if ch == '"':
            return [("CLAUSE", Term(field, self._quoted(), phrase=True))]
        if ch in "[{":
            return [("CLAUSE", self._range(field))]
        if ch == "(":
            return self._group(field)
        if ch in "<>":
            op = ch
            self.pos += 1
            if self.pos < len(self.text) and self.text[self.pos] == "=":
                op += "="
                self.pos += 1
            value = self._read_until("+()\"")
            if not value:
                raise QuerySyntaxError(f"missing value after {field}:{op} in query {self.text!r}")
            if op.startswith(">"):
                return [("CLAUSE", Range(field, value, None, include_low=op == ">="))]
            return [("CLAUSE", Range(field, None, value, include_high=op == "<="))]
        value = self._read_until("+()\"")
        if not value:
            raise QuerySyntaxError(f"missing value after {field}: in query {self.text!r}")
        return [("CLAUSE", Term(field, value))]

    def _range(self, field: str) -> Range:
        opener = self.text[self.pos]
        close_at = min((i for i in (self.text.find("]", self.pos), self.text.find("}", self.pos)) if i != -1), default=-1)
        if close_at == -1:
            raise QuerySyntaxError(f"unterminated range for {field} in query {self.text!r}")
        closer = self.text[close_at]
        inner = self.text[self.pos + 1 : close_at].replace("+", " ").split()
        self.pos = close_at + 1
        if len(inner) != 3 or inner[1] != "TO":
            raise QuerySyntaxError(f"range for {field} must be [A TO B] in query {self.text!r}")
        low, high = (None if v == "*" else v for v in (inner[0], inner[2]))
        return Range(field, low, high, include_low=opener == "[", include_high=closer == "]")

    def _group(self, field: str) -> list[tuple[str, Any]]:
        """field:(a b "c d") -> ( field:a OR field:b OR field:"c d" ), AND/OR/NOT kept."""
        self.pos += 1
        out: list[tuple[str, Any]] = [("(", None)]
        while True:
            while self.pos < len(self.text) and (self.text[self.pos].isspace() or self.text[self.pos] == "+"):
                self.pos += 1
            if self.pos >= len(self.text):
                raise QuerySyntaxError(f"unterminated group for {field} in query {self.text!r}")
            ch = self.text[self.pos]
            if ch == ")":
                self.pos += 1
                out.append((")", None))
                return out
            if ch == '"':
                out.append(("CLAUSE", Term(field, self._quoted(), phrase=True)))
                continue
            word = self._read_until("+()\"")
            if not word:
                raise QuerySyntaxError(f"unexpected {ch!r} in group for {field} in query {self.text!r}")
            out.append((word, None) if word in ("AND", "OR", "NOT") else ("CLAUSE", Term(field, word)))


class _Parser:
    """or_expr := and_expr ((OR | juxtaposition) and_expr)*; and_expr := unary (AND unary)*."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _Lexer(text).tokens()
        self.i = 0

    def parse(self) -> Node:
        if not self.tokens:
            return MatchAll()
        node = self._or()
        if self.i != len(self.tokens):
            raise QuerySyntaxError(f"unexpected {self.tokens[self.i][0]!r} in query {self.text!r}")
        return node

    def _peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def _or(self) -> Node:
        nodes = [self._and()]
        while self._peek() not in (None, ")"):
            if self._peek() == "OR":
                self.i += 1
            nodes.append(self._and())
        return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))

    def _and(self) -> Node:
        nodes = [self._unary()]
        while self._peek() == "AND":
            self.i += 1
            nodes.append(self._unary())
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def _unary(self) -> Node:
        kind = self._peek()
        if kind == "NOT":
            self.i += 1
            return Not(self._unary())
        if kind == "(":
            self.i += 1
            node = self._or() if self._peek() != ")" else MatchAll()
            if self._peek() != ")":
                raise QuerySyntaxError(f"missing ')' in query {self.text!r}")
            self.i += 1
            return node
        if kind == "CLAUSE":
            node = self.tokens[self.i][1]
            self.i += 1
            return node
        raise QuerySyntaxError(f"expected a clause, got {kind!r} in query {self.text!r}")


def parse_query(text: str) -> Node:
    """Parse the openFDA search subset into an AST; raises QuerySyntaxError."""
    return _Parser(text).parse()


# ---------------------------------------------------------------------------------------------
# Field access and indexes


def field_values(record: Any, path: Sequence[str]) -> list[Any]:
    """Leaf values at a dotted path, descending through lists; None values dropped."""
    current: list[Any] = [record]
    for key in path:
        nxt: list[Any] = []
        for item in current:
            for element in item if isinstance(item, list) else [item]:
                if isinstance(element, dict) and key in element:
                    nxt.append(element[key])
        current = nxt
    leaves: list[Any] = []
    stack = list(current)
    while stack:
        value = stack.pop(0)
        if isinstance(value, list):
            stack[0:0] = value
        elif value is not None and not isinstance(value, dict):
            leaves.append(value)
    return leaves


def tokens(value: Any) -> list[str]:
    return _TOKEN_RE.findall(str(value).lower())


def split_field(field: str) -> tuple[tuple[str, ...], bool]:
    """'patient.reaction.reactionmeddrapt.exact' -> (path, exact=True)."""
    parts = field.split(".")
    if parts[-1] == "exact":
        return tuple(parts[:-1]), True
    return tuple(parts), False


def _normalise_bound(value: str) -> str:
    match = _DATE_RE.match(value)
    return "".join(match.groups()) if match else value


def _compare(a: str, b: str) -> int:
    try:
        fa, fb = float(a), float(b)
    except ValueError:
        return (a > b) - (a < b)
    return (fa > fb) - (fa < fb)


def _date_millis(value: str) -> int | None:
    match = _DATE_RE.match(str(value))
    if not match:
        return None
    year, month, day = (int(g) for g in match.groups())
    try:
        moment = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


class _Index:
    """Per-path value lists and inverted indexes, built lazily once per path."""

    def __init__(self, reports: Sequence[dict[str, Any]]) -> None:
        self.reports = reports
        self.all = frozenset(range(len(reports)))
        self._values: dict[tuple[str, ...], list[list[Any]]] = {}
        self._exact: dict[tuple[str, ...], dict[str, set[int]]] = {}
        self._tokens: dict[tuple[str, ...], dict[str, set[int]]] = {}
        self._any_tokens: dict[str, set[int]] | None = None

    def values(self, path: tuple[str, ...]) -> list[list[Any]]:
        if path not in self._values:
            self._values[path] = [field_values(r, path) for r in self.reports]
        return self._values[path]

    def exact(self, path: tuple[str, ...]) -> dict[str, set[int]]:
        if path not in self._exact:
            inverted: dict[str, set[int]] = {}
            for doc, vals in enumerate(self.values(path)):
                for v in vals:
                    inverted.setdefault(str(v), set()).add(doc)
            self._exact[path] = inverted
        return self._exact[path]

    def token_index(self, path: tuple[str, ...]) -> dict[str, set[int]]:
        if path not in self._tokens:
            inverted: dict[str, set[int]] = {}
            for doc, vals in enumerate(self.values(path)):
                for v in vals:
                    for tok in tokens(v):
                        inverted.setdefault(tok, set()).add(doc)
            self._tokens[path] = inverted
        return self._tokens[path]

    def all_leaves(self, doc: int) -> list[Any]:
        return field_values_all(self.reports[doc])

    def any_token_index(self) -> dict[str, set[int]]:
        if self._any_tokens is None:
            inverted: dict[str, set[int]] = {}
            for doc in range(len(self.reports)):
                for v in self.all_leaves(doc):
                    for tok in tokens(v):
                        inverted.setdefault(tok, set()).add(doc)
            self._any_tokens = inverted
        return self._any_tokens


def field_values_all(record: Any) -> list[Any]:
    out: list[Any] = []
    stack = [record]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None:
            out.append(item)
    return out


def _phrase_in(phrase: list[str], value_tokens: list[str]) -> bool:
    n = len(phrase)
    return any(value_tokens[i : i + n] == phrase for i in range(len(value_tokens) - n + 1))


class _Evaluator:
    def __init__(self, index: _Index) -> None:
        self.index = index

    def run(self, node: Node) -> frozenset[int] | set[int]:
        if isinstance(node, MatchAll):
            return self.index.all
        if isinstance(node, And):
            result = set(self.run(node.nodes[0]))
            for child in node.nodes[1:]:
                result &= self.run(child)
            return result
        if isinstance(node, Or):
            result = set()
            for child in node.nodes:
                result |= self.run(child)
            return result
        if isinstance(node, Not):
            return self.index.all - self.run(node.node)
        if isinstance(node, Exists):
            path, _ = split_field(node.field)
            return {doc for doc, vals in enumerate(self.index.values(path)) if vals}
        if isinstance(node, Range):
            return self._range(node)
        return self._term(node)

    def _term(self, node: Term) -> set[int]:
        if not node.field:
            return self._tokens_match(self.index.any_token_index(), node.value, None)
        path, exact = split_field(node.field)
        if exact:
            return set(self.index.exact(path).get(node.value, ()))
        if path[-1] in DATE_FIELDS or path[-1].endswith("date"):
            wanted = _normalise_bound(node.value)
            return set(self.index.exact(path).get(wanted, ()))
        return self._tokens_match(self.index.token_index(path), node.value, path)

    def _tokens_match(self, inverted: dict[str, set[int]], value: str, path: tuple[str, ...] | None) -> set[int]:
        wanted = tokens(value)
        if not wanted:
            return set()
        candidates = set(inverted.get(wanted[0], ()))
        for tok in wanted[1:]:
            candidates &= inverted.get(tok, set())
        if len(wanted) == 1:
            return candidates
        matched = set()
        for doc in candidates:
            leaves = self.index.values(path)[doc] if path is not None else self.index.all_leaves(doc)
            if any(_phrase_in(wanted, tokens(v)) for v in leaves):
                matched.add(doc)
        return matched

    def _range(self, node: Range) -> set[int]:
        path, _ = split_field(node.field)
        low = _normalise_bound(node.low) if node.low is not None else None
        high = _normalise_bound(node.high) if node.high is not None else None
        values = self.index.values(path)
        if all(b is None or _DAY_RE.match(b) for b in (low, high)):
            # YYYYMMDD bounds: plain string order, far faster than numeric parsing of every value
            lo, hi = low or "", high or "99999999"

            def inside_day(v: Any) -> bool:
                s = str(v)
                if not _DAY_RE.match(s):
                    return _inside(s, node, low, high)
                return (lo < s or (node.include_low and lo == s)) and (s < hi or (node.include_high and s == hi))

            return {doc for doc, vals in enumerate(values) if any(inside_day(v) for v in vals)}
        return {doc for doc, vals in enumerate(values) if any(_inside(str(v), node, low, high) for v in vals)}


def _inside(s: str, node: Range, low: str | None, high: str | None) -> bool:
    if low is not None:
        c = _compare(s, low)
        if c < 0 or (c == 0 and not node.include_low):
            return False
    if high is not None:
        c = _compare(s, high)
        if c > 0 or (c == 0 and not node.include_high):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# The engine


@dataclass(frozen=True)
class _SortSpec:
    path: tuple[str, ...] | None  # None: the _uid tie-breaker
    descending: bool
    is_date: bool


def _uid(record: dict[str, Any], position: int) -> str:
    rid = record.get("safetyreportid")
    return str(rid) if rid is not None else f"~{position:012d}"


def render_json(payload: Any) -> bytes:
    """JSON as the server sends it (Express with 'json spaces' 2, UTF-8, no ASCII escaping)."""
    return json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8")


def _error(status: int, code: str, message: str, details: str | None = None) -> EngineResponse:
    error: dict[str, str] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return EngineResponse(status, {"Content-Type": "application/json; charset=utf-8"}, render_json({"error": error}))


def _escape(text: str) -> str:
    """escape-html, as the server applies to echoed parameters."""
    return html.escape(text, quote=True).replace("&#x27;", "&#39;")


def qs_stringify(query: Mapping[str, Any], delimiter: str = "&") -> str:
    """Node `qs.stringify` for flat objects (RFC 3986 encoding, like encodeURIComponent)."""
    return delimiter.join(f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in query.items())


class Engine:
    """Answers drug/event requests over a list of reports, as api.fda.gov would."""

    def __init__(self, reports: Sequence[dict[str, Any]], last_updated: str, *, origin: str = "https://api.fda.gov") -> None:
        self.reports = list(reports)
        self.last_updated = last_updated
        self.origin = origin.rstrip("/")
        self._index = _Index(self.reports)
        self._uids = [_uid(r, i) for i, r in enumerate(self.reports)]
        self._match_cache: dict[str, frozenset[int] | set[int]] = {}
        self._order_cache: dict[tuple[str, str], tuple[list[int], list[tuple[Any, ...]]]] = {}
        self._render_cache: dict[int, bytes] = {}

    @classmethod
    def from_file(cls, path: Path | str, *, origin: str = "https://api.fda.gov") -> Engine:
        meta, reports = load_bulk_file(path)
        last_updated = meta.get("last_updated")
        if not last_updated:
            raise ValueError(f"{path}: meta.last_updated is missing; the engine needs the data version")
        return cls(reports, str(last_updated), origin=origin)

    # -- request handling ------------------------------------------------------------------

    def handle(self, params: Mapping[str, str], *, origin: str | None = None) -> EngineResponse:
        """Answer one GET /drug/event.json with the given (decoded) query parameters."""
        try:
            clean = self._check_params(dict(params))
        except _BadRequest as exc:
            return _error(400, "BAD_REQUEST", exc.message)
        search = clean.get("search")
        if search is not None and not SUPPORTED_QUERY_RE.match(search):
            return _error(400, "BAD_REQUEST", "Search not supported: " + _escape(search))
        try:
            sort = self._sort_spec(clean.get("sort"))
        except _BadRequest as exc:
            return _error(400, "BAD_REQUEST", exc.message)
        try:
            matches = self._matches(search or "")
            if "count" in clean:
                return self._count(clean, matches)
            return self._search(dict(params), clean, matches, sort, origin or self.origin)
        except QuerySyntaxError as exc:
            return _error(500, "SERVER_ERROR", "Check your request and try again", str(exc))

    def _check_params(self, params: dict[str, str]) -> dict[str, Any]:
        for name in params:
            if name not in EXPECTED_PARAMS:
                raise _BadRequest("Invalid parameter: " + _escape(name))
        out: dict[str, Any] = {k: v for k, v in params.items() if v != ""}
        if "limit" in out:
            if not re.fullmatch(r"\d+", out["limit"].strip()):
                raise _BadRequest("Invalid limit parameter value.")
            out["limit"] = int(out["limit"].strip())
        if "skip" in out:
            if not re.fullmatch(r"\d+", out["skip"].strip()):
                raise _BadRequest("Invalid skip parameter value.")
            out["skip"] = int(out["skip"].strip())
            if out["skip"] > MAX_SKIP:
                raise _BadRequest(f"Skip value must {MAX_SKIP} or less.")
        if "count" not in out and out.get("limit", 0) > MAX_SEARCH_LIMIT:
            raise _BadRequest(
                "Limit cannot exceed 1000 results for search requests. "
                "Use the skip or search_after param to get additional results."
            )
        if "count" in out and out.get("limit", 0) > self._count_max(out["count"]):
            raise _BadRequest("Limit cannot exceed 1000 results for count requests.")
        if "count" in out and out.get("skip"):
            raise _BadRequest("Should not use skip param when using count.")
        if "search_after" in out and out.get("skip"):
            raise _BadRequest("The skip parameter is not supported when using search_after.")
        out.setdefault("skip", 0)
        out.setdefault("limit", 100 if "count" in out else 1)
        return out

    @staticmethod
    def _count_max(count: str) -> int:
        limitless = any(count in (f, f + ".exact") for f in LIMITLESS_COUNT_FIELDS)
        return 2147483647 - 1000 if limitless else MAX_COUNT_LIMIT

    def _sort_spec(self, sort: str | None) -> list[_SortSpec]:
        specs: list[_SortSpec] = []
        if sort:
            sort = sort.strip()
            if not SUPPORTED_QUERY_RE.match(sort):
                raise _BadRequest("Sort not supported: " + _escape(sort))
            for part in sort.split(","):
                name, _, direction = part.partition(":")
                is_date = any(name.endswith(f) for f in DATE_FIELDS)
                if "exact" not in name and not is_date:
                    raise _BadRequest("Sorting allowed by non-analyzed fields only: " + _escape(name))
                path, _exact = split_field(name)
                specs.append(_SortSpec(path, direction.strip().lower() == "desc", is_date))
        specs.append(_SortSpec(None, False, False))
        return specs

    def _matches(self, search: str) -> frozenset[int] | set[int]:
        if search not in self._match_cache:
            if len(self._match_cache) > 64:
                self._match_cache.clear()
            self._match_cache[search] = _Evaluator(self._index).run(parse_query(search))
        return self._match_cache[search]

    # -- search ----------------------------------------------------------------------------

    def _sort_values(self, doc: int, specs: list[_SortSpec]) -> tuple[Any, ...]:
        out: list[Any] = []
        for spec in specs:
            if spec.path is None:
                out.append(self._uids[doc])
                continue
            vals = self._index.values(spec.path)[doc]
            if spec.is_date:
                millis = [m for m in (_date_millis(v) for v in vals) if m is not None]
                if millis:
                    out.append(max(millis) if spec.descending else min(millis))
                else:
                    out.append(_MISSING_LOW if spec.descending else _MISSING_HIGH)
            else:
                strs = [str(v) for v in vals]
                out.append((max(strs) if spec.descending else min(strs)) if strs else None)
        return tuple(out)

    @staticmethod
    def _cmp(a: tuple[Any, ...], b: tuple[Any, ...], specs: list[_SortSpec]) -> int:
        for x, y, spec in zip(a, b, specs, strict=True):
            if x == y:
                continue
            if x is None:  # missing keyword values sort last either way
                return 1
            if y is None:
                return -1
            c = (x > y) - (x < y)
            return -c if spec.descending else c
        return 0

    def _ordered(self, search: str, sort_key: str, matches: Iterable[int], specs: list[_SortSpec]):
        key = (search, sort_key)
        if key not in self._order_cache:
            if len(self._order_cache) > 64:
                self._order_cache.clear()
            rows = [(self._sort_values(doc, specs), doc) for doc in matches]
            rows.sort(key=cmp_to_key(lambda a, b: self._cmp(a[0], b[0], specs)))
            self._order_cache[key] = ([d for _, d in rows], [v for v, _ in rows])
        return self._order_cache[key]

    def _parse_cursor(self, raw: str, specs: list[_SortSpec]) -> tuple[Any, ...]:
        pairs = [p.partition("=") for p in raw.split(";") if p]
        values = [_unquote_qs(v) for _, _, v in pairs]
        if len(values) != len(specs):
            raise QuerySyntaxError(
                f"search_after has {len(values)} value(s) but the sort has {len(specs)}: {raw!r}"
            )
        out: list[Any] = []
        for value, spec in zip(values, specs, strict=True):
            if spec.is_date:
                try:
                    out.append(int(value))
                except ValueError as exc:
                    raise QuerySyntaxError(f"search_after value {value!r} is not a date sort value") from exc
            else:
                out.append(value)
        return tuple(out)

    def _search(self, raw: dict[str, str], params: dict[str, Any], matches, specs, origin: str) -> EngineResponse:
        total = len(matches)
        limit, skip = params["limit"], params["skip"]
        if limit == 0 and "search_after" not in params:  # a total only: no need to order the hits
            docs, keys, start = [], [], 0
        else:
            docs, keys = self._ordered(params.get("search", ""), params.get("sort", ""), matches, specs)
            start = skip
            if "search_after" in params:
                cursor = self._parse_cursor(params["search_after"], specs)
                start = _bisect_after(keys, cursor, lambda a, b: self._cmp(a, b, specs))
        page = docs[start : start + limit]
        if not page and not (limit == 0 and total > 0):
            return _error(404, "NOT_FOUND", "No matches found!")
        meta = {**META, "last_updated": self.last_updated, "results": {"skip": skip, "limit": limit, "total": total}}
        headers = {"Content-Type": "application/json; charset=utf-8"}
        next_query: dict[str, Any] | None = None
        if skip > 0:
            if total > skip + limit:
                next_query = dict(raw)
                next_query["skip"] = skip + limit
        elif page and len(page) >= limit and total != len(page):
            next_query = dict(raw)
            last = keys[start + len(page) - 1]
            next_query["search_after"] = qs_stringify({str(i): v for i, v in enumerate(last)}, delimiter=";")
        if next_query is not None:
            headers["Link"] = f'<{origin}{DRUG_EVENT_PATH}?{qs_stringify(next_query)}>; rel="next"'
        return EngineResponse(200, headers, self._render_page(meta, page))

    def _render_page(self, meta: dict[str, Any], page: list[int]) -> bytes:
        """render_json({"meta", "results"}) byte for byte, reusing each report's rendering.

        json.dumps with indent runs the pure-Python encoder; caching a report's indented text makes
        repeated pages (retries, reruns, benchmarks) cheap.
        """
        if not page:
            return render_json({"meta": meta, "results": []})
        head = render_json({"meta": meta, "results": [None]})
        prefix = head[: head.rindex(b"null")]
        suffix = head[head.rindex(b"null") + 4 :]
        return prefix + b",\n    ".join(self._rendered(d) for d in page) + suffix

    def _rendered(self, doc: int) -> bytes:
        cached = self._render_cache.get(doc)
        if cached is None:
            cached = render_json(self.reports[doc]).replace(b"\n", b"\n    ")
            self._render_cache[doc] = cached
        return cached

    # -- count -----------------------------------------------------------------------------

    def _count(self, params: dict[str, Any], matches) -> EngineResponse:
        field = params["count"]
        path, exact = split_field(field)
        values = self._index.values(path)
        meta = {**META, "last_updated": self.last_updated}
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if field in DATE_FIELDS:
            days: Counter[str] = Counter()
            for doc in matches:
                for day in {_normalise_bound(str(v)) for v in values[doc] if _date_millis(v) is not None}:
                    days[day] += 1
            if not days:
                return _error(404, "NOT_FOUND", "Nothing to count")
            results: list[dict[str, Any]] = [{"time": t, "count": c} for t, c in sorted(days.items())]
            return EngineResponse(200, headers, render_json({"meta": meta, "results": results}))
        terms: Counter[Any] = Counter()
        for doc in matches:
            found: set[Any] = set()
            for v in values[doc]:
                if exact:
                    found.add(str(v))
                elif re.fullmatch(r"-?\d+", str(v)):
                    found.add(int(v))
                else:
                    found.update(tokens(v))
            terms.update(found)
        if not terms:
            return _error(404, "NOT_FOUND", "Nothing to count")
        ranked = sorted(terms.items(), key=lambda kv: (-kv[1], str(kv[0])))
        results = [{"term": t, "count": c} for t, c in ranked[: params["limit"]]]
        return EngineResponse(200, headers, render_json({"meta": meta, "results": results}))


def _unquote_qs(value: str) -> str:
    from urllib.parse import unquote

    return unquote(value)


def _bisect_after(keys: list[tuple[Any, ...]], cursor: tuple[Any, ...], cmp) -> int:
    """First position whose sort key is strictly greater than the cursor."""
    lo, hi = 0, len(keys)
    while lo < hi:
        mid = (lo + hi) // 2
        if cmp(keys[mid], cursor) <= 0:
            lo = mid + 1
        else:
            hi = mid
    return lo


# ---------------------------------------------------------------------------------------------
# Loading bulk files


def read_bulk_bytes(path: Path | str) -> bytes:
    """The JSON document of an openFDA bulk partition: .json, .json.gz or a .zip holding one .json."""
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.endswith(".json")]
            if len(members) != 1:
                raise ValueError(f"{path}: expected exactly one .json member, found {members}")
            return archive.read(members[0])
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as handle:
            return handle.read()
    return path.read_bytes()


def load_bulk_file(path: Path | str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(meta, results) of an openFDA bulk-format file; meta.last_updated is the data version."""
    document = json.load(io.BytesIO(read_bulk_bytes(path)))
    if isinstance(document, list):
        raise ValueError(f"{path}: a bare list of reports has no meta; wrap it as {{'meta': ..., 'results': [...]}}")
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise ValueError(f"{path}: not an openFDA bulk document (no 'results' list)")
    for position, report in enumerate(document["results"]):
        if not isinstance(report, dict):
            raise ValueError(f"{path}: results[{position}] is {type(report).__name__}, expected a report object")
    return dict(document.get("meta") or {}), document["results"]
