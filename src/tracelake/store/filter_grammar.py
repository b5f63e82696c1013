"""The trace search grammar (MLflow's ``search_traces`` filter, plus OR and parentheses).

A hand-written tokenizer and recursive-descent parser that turn a filter string into a
small typed AST, validated against the catalog of searchable fields below. No SQL here:
``tracelake.store.sql.search`` compiles the AST. Every error is a ``BadFilter`` carrying
the 0-based position of the offending token.

    filter     := or_expr EOF
    or_expr    := and_expr (OR and_expr)*          -- AND binds tighter than OR
    and_expr   := primary (AND primary)*
    primary    := '(' or_expr ')' | comparison
    comparison := field op value
                | field [NOT] IN '(' value (',' value)* ')'
                | field IS [NOT] NULL
    field      := [prefix '.'] name | prefix '.' (`quoted key` | "quoted key")
    op         := = | != | <> | < | <= | > | >= | LIKE | ILIKE
    value      := 'string' | "string" | integer | float | TRUE | FALSE
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union

from tracelake.errors import BadFilter

__all__ = [
    "And",
    "Comparison",
    "FieldKind",
    "FieldRef",
    "Node",
    "Op",
    "Or",
    "OrderKey",
    "Scalar",
    "Value",
    "parse_filter",
    "parse_order_by",
]


class FieldKind(str, enum.Enum):
    ATTRIBUTE = "attributes"
    TAG = "tags"
    METADATA = "metadata"
    SPAN = "span"
    FEEDBACK = "feedback"
    EXPECTATION = "expectation"
    TEXT = "text"  # full text over previews and span names/inputs/outputs


class Op(str, enum.Enum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    LIKE = "LIKE"
    ILIKE = "ILIKE"
    IN = "IN"
    NOT_IN = "NOT IN"
    IS_NULL = "IS NULL"
    IS_NOT_NULL = "IS NOT NULL"


Scalar = Union[str, int, float, bool]


# Positions are kept for error messages but left out of equality, so tests and callers
# can compare ASTs by meaning.
@dataclass(frozen=True, slots=True)
class FieldRef:
    kind: FieldKind
    name: str  # canonical attribute / span field name, or the tag, metadata or assessment key
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        if self.kind is FieldKind.TEXT:
            return "trace.text"
        if any(c in self.name for c in ". `\"") and self.kind is not FieldKind.ATTRIBUTE:
            return f"{self.kind.value}.`{self.name}`"
        return f"{self.kind.value}.{self.name}"


@dataclass(frozen=True, slots=True)
class Value:
    value: Scalar
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Comparison:
    field: FieldRef
    op: Op
    value: Value | tuple[Value, ...] | None  # a tuple for IN / NOT IN, None for IS [NOT] NULL
    position: int = field(default=0, compare=False)  # of the operator


@dataclass(frozen=True, slots=True)
class And:
    clauses: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    clauses: tuple[Node, ...]


Node = Union[Comparison, And, Or]


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: str  # canonical attribute name, e.g. "timestamp_ms"
    descending: bool


# -- the catalog of searchable fields ---------------------------------------------------

class _Type(enum.Enum):
    NUMBER = "number"
    STRING = "string"
    STATE = "trace state"
    SPAN_STATUS = "span status"
    TEXT = "text"
    ASSESSMENT = "assessment value"


_STRING_OPS = frozenset({Op.EQ, Op.NE, Op.LIKE, Op.ILIKE, Op.IN, Op.NOT_IN, Op.IS_NULL, Op.IS_NOT_NULL})
_NUMERIC_ONLY = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})
_ALLOWED_OPS: dict[_Type, frozenset[Op]] = {
    _Type.NUMBER: frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.IS_NULL, Op.IS_NOT_NULL}) | _NUMERIC_ONLY,
    _Type.STRING: _STRING_OPS,
    _Type.STATE: frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN}),
    _Type.SPAN_STATUS: frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN}),
    _Type.TEXT: frozenset({Op.LIKE, Op.ILIKE}),
    _Type.ASSESSMENT: _STRING_OPS,
}

# canonical attribute -> (type, aliases)
_ATTRIBUTES: dict[str, tuple[_Type, tuple[str, ...]]] = {
    "trace_id": (_Type.STRING, ("request_id",)),
    "status": (_Type.STATE, ("state",)),
    "timestamp_ms": (_Type.NUMBER, ("timestamp", "request_time")),
    "execution_time_ms": (_Type.NUMBER, ("execution_time", "execution_duration", "execution_duration_ms")),
    "end_time_ms": (_Type.NUMBER, ("end_time",)),  # timestamp_ms + execution_time_ms
    "experiment_id": (_Type.NUMBER, ()),
    "name": (_Type.STRING, ()),
    "client_request_id": (_Type.STRING, ()),
    "request_preview": (_Type.STRING, ()),
    "response_preview": (_Type.STRING, ()),
    "session_id": (_Type.STRING, ()),
    "user": (_Type.STRING, ("user_id",)),
}
_ATTRIBUTE_BY_ALIAS = {alias: canon for canon, (_, aliases) in _ATTRIBUTES.items() for alias in (canon, *aliases)}
_SORTABLE = ("timestamp_ms", "execution_time_ms", "end_time_ms", "status", "name", "trace_id",
             "experiment_id", "client_request_id", "session_id", "user")
_SOURCE_RUN_KEY = "mlflow.sourceRun"  # MLflow's `run_id` search key lives in trace metadata

# span field -> (canonical, type)
_SPAN_FIELDS: dict[str, tuple[str, _Type]] = {
    "name": ("name", _Type.STRING),
    "type": ("type", _Type.STRING),
    "span_type": ("type", _Type.STRING),
    "status": ("status", _Type.SPAN_STATUS),
    "status_code": ("status", _Type.SPAN_STATUS),
}

_PREFIXES: dict[str, FieldKind] = {
    "attributes": FieldKind.ATTRIBUTE,
    "attribute": FieldKind.ATTRIBUTE,
    "trace": FieldKind.ATTRIBUTE,
    "tags": FieldKind.TAG,
    "tag": FieldKind.TAG,
    "metadata": FieldKind.METADATA,
    "request_metadata": FieldKind.METADATA,
    "span": FieldKind.SPAN,
    "feedback": FieldKind.FEEDBACK,
    "expectation": FieldKind.EXPECTATION,
}

# Accepted spellings -> stored value. MLflow 2's TraceStatus and the OTLP enum names are
# accepted; the UNSPECIFIED state is valid to ask for but is never stored.
_STATES = {"OK": "OK", "ERROR": "ERROR", "IN_PROGRESS": "IN_PROGRESS",
           "STATE_UNSPECIFIED": "STATE_UNSPECIFIED", "TRACE_STATUS_UNSPECIFIED": "STATE_UNSPECIFIED"}
_SPAN_STATUSES = {"OK": "OK", "ERROR": "ERROR", "UNSET": "UNSET",
                  "STATUS_CODE_OK": "OK", "STATUS_CODE_ERROR": "ERROR", "STATUS_CODE_UNSET": "UNSET"}


# -- tokenizer ------------------------------------------------------------------------

class _Tok(enum.Enum):
    WORD = "identifier"
    STRING = "string"
    NUMBER = "number"
    OP = "operator"
    KEYWORD = "keyword"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    EOF = "end of filter"


_MAX_DEPTH = 32
_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "TRUE", "FALSE", "ASC", "DESC"})
_OPERATORS = ("!=", "<>", "<=", ">=", "=", "<", ">")  # longest first
_WORD_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_WORD_CHARS = _WORD_START | frozenset("0123456789.")
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Tok
    text: str  # keyword/operator in upper case; identifier as written; decoded string
    position: int
    end: int
    value: Scalar | None = None  # for NUMBER and STRING
    key: str | None = None  # for WORD: a quoted key that followed "prefix."
    key_position: int = 0


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            kind = {"(": _Tok.LPAREN, ")": _Tok.RPAREN, ",": _Tok.COMMA}[c]
            tokens.append(_Token(kind, c, i, i + 1))
            i += 1
        elif c in "'\"":
            text, end = _read_quoted(source, i, escapes=True)
            tokens.append(_Token(_Tok.STRING, text, i, end, value=text))
            i = end
        elif c in _DIGITS or (c in "+-." and _starts_number(source, i)):
            token, i = _read_number(source, i)
            tokens.append(token)
        elif c in _WORD_START:
            token, i = _read_word(source, i)
            tokens.append(token)
        else:
            op = next((o for o in _OPERATORS if source.startswith(o, i)), None)
            if op is None:
                raise BadFilter(f"Unexpected character {c!r}", source, i)
            tokens.append(_Token(_Tok.OP, "!=" if op == "<>" else op, i, i + len(op)))
            i += len(op)
    tokens.append(_Token(_Tok.EOF, "", n, n))
    return tokens


def _read_quoted(source: str, start: int, *, escapes: bool) -> tuple[str, int]:
    """Read a quoted run starting at ``start``; ``\\'``, ``\\"`` and ``\\\\`` are escapes
    (other backslashes are kept, so LIKE patterns can escape ``%`` and ``_``)."""
    quote = source[start]
    out: list[str] = []
    i = start + 1
    while i < len(source):
        c = source[i]
        if escapes and c == "\\" and i + 1 < len(source) and source[i + 1] in "'\"\\":
            out.append(source[i + 1])
            i += 2
        elif c == quote:
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise BadFilter(f"Unterminated quoted text starting with {quote}", source, start)


def _starts_number(source: str, i: int) -> bool:
    if source[i] in "+-":
        i += 1
    if i < len(source) and source[i] == ".":
        i += 1
    return i < len(source) and source[i] in _DIGITS


def _read_number(source: str, start: int) -> tuple[_Token, int]:
    i = start
    if source[i] in "+-":
        i += 1
    is_float = False
    while i < len(source) and (source[i] in _DIGITS or (source[i] == "." and not is_float)):
        is_float = is_float or source[i] == "."
        i += 1
    if i < len(source) and source[i] in "eE":
        j = i + 1
        if j < len(source) and source[j] in "+-":
            j += 1
        if j < len(source) and source[j] in _DIGITS:
            is_float = True
            i = j
            while i < len(source) and source[i] in _DIGITS:
                i += 1
    if i < len(source) and source[i] in _WORD_CHARS:
        end = i
        while end < len(source) and source[end] in _WORD_CHARS:
            end += 1
        raise BadFilter(f"Malformed number {source[start:end]!r}", source, start)
    text = source[start:i]
    value: int | float = float(text) if is_float else int(text)
    return _Token(_Tok.NUMBER, text, start, i, value=value), i


def _read_word(source: str, start: int) -> tuple[_Token, int]:
    i = start
    while i < len(source) and source[i] in _WORD_CHARS:
        i += 1
    word = source[start:i]
    if word.endswith(".") and i < len(source) and source[i] in "`\"":
        key, end = _read_quoted(source, i, escapes=False)
        if not key:
            raise BadFilter("Empty quoted key", source, i)
        return _Token(_Tok.WORD, word, start, end, key=key, key_position=i), end
    if "." not in word and word.upper() in _KEYWORDS:
        return _Token(_Tok.KEYWORD, word.upper(), start, i), i
    return _Token(_Tok.WORD, word, start, i), i


# -- parser ---------------------------------------------------------------------------

def parse_filter(filter_string: str | None) -> Node | None:
    """Parse a search filter; ``None`` for an empty one. Raises ``BadFilter``."""
    if filter_string is None or not filter_string.strip():
        return None
    return _Parser(filter_string).parse()


def parse_order_by(order_by: list[str] | None) -> tuple[OrderKey, ...]:
    """Parse ``["timestamp_ms DESC", "name"]``-style clauses (default ``timestamp_ms DESC``).

    The ``trace_id`` tiebreaker is not added here; the SQL layer adds it."""
    keys: list[OrderKey] = []
    for clause in order_by or []:
        key = _parse_order_clause(clause)
        if any(k.field == key.field for k in keys):
            raise BadFilter(f"order_by names {key.field} twice", clause, 0)
        keys.append(key)
    return tuple(keys) or (OrderKey("timestamp_ms", descending=True),)


def _parse_order_clause(clause: str) -> OrderKey:
    tokens = _tokenize(clause)
    first = tokens[0]
    if first.kind is not _Tok.WORD:
        raise BadFilter("order_by expects a trace attribute, e.g. 'timestamp_ms DESC'", clause, first.position)
    ref = _resolve_field(first, clause)
    if ref.kind is not FieldKind.ATTRIBUTE or ref.name not in _SORTABLE:
        raise BadFilter(f"Cannot order by {clause[first.position:first.end]}; sortable attributes are: "
                        f"{', '.join(_SORTABLE)}", clause, first.position)
    descending = False
    nxt = tokens[1]
    if nxt.kind is _Tok.KEYWORD and nxt.text in ("ASC", "DESC"):
        descending = nxt.text == "DESC"
        nxt = tokens[2]
    if nxt.kind is not _Tok.EOF:
        raise BadFilter("Expected ASC, DESC or the end of the order_by clause", clause, nxt.position)
    return OrderKey(ref.name, descending)


def _resolve_field(tok: _Token, source: str) -> FieldRef:
    word = tok.text
    if tok.key is not None:
        prefix, name, name_pos = word[:-1], tok.key, tok.key_position
    elif "." in word:
        prefix, name = word.split(".", 1)
        name_pos = tok.position + len(prefix) + 1
    else:
        prefix, name, name_pos = "attributes", word, tok.position
    kind = _PREFIXES.get(prefix.lower())
    if kind is None:
        raise BadFilter(f"Unknown field prefix {prefix!r}; use one of: {', '.join(_PREFIXES)}",
                        source, tok.position)
    if not name:
        raise BadFilter(f"Missing name after '{prefix}.'", source, name_pos)
    if kind is FieldKind.ATTRIBUTE:
        lowered = name.lower()
        if lowered == "text":
            return FieldRef(FieldKind.TEXT, "text", tok.position)
        if lowered == "run_id":
            return FieldRef(FieldKind.METADATA, _SOURCE_RUN_KEY, tok.position)
        canon = _ATTRIBUTE_BY_ALIAS.get(lowered)
        if canon is None:
            raise BadFilter(f"Unknown trace attribute {name!r}; use one of: "
                            f"{', '.join([*_ATTRIBUTES, 'text', 'run_id'])}", source, name_pos)
        return FieldRef(kind, canon, tok.position)
    if kind is FieldKind.SPAN:
        spec = _SPAN_FIELDS.get(name.lower())
        if spec is None:
            raise BadFilter(f"Unknown span field {name!r}; use one of: span.name, span.type, span.status",
                            source, name_pos)
        return FieldRef(kind, spec[0], tok.position)
    return FieldRef(kind, name, tok.position)


def _field_type(ref: FieldRef) -> _Type:
    if ref.kind is FieldKind.ATTRIBUTE:
        return _ATTRIBUTES[ref.name][0]
    if ref.kind is FieldKind.SPAN:
        return _SPAN_FIELDS[ref.name][1]
    if ref.kind is FieldKind.TEXT:
        return _Type.TEXT
    if ref.kind in (FieldKind.FEEDBACK, FieldKind.EXPECTATION):
        return _Type.ASSESSMENT
    return _Type.STRING


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.i = 0
        self.depth = 0

    # -- helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _at_keyword(self, *words: str) -> bool:
        return self.tok.kind is _Tok.KEYWORD and self.tok.text in words

    def _fail(self, message: str, tok: _Token | None = None) -> BadFilter:
        tok = tok or self.tok
        return BadFilter(message, self.source, tok.position)

    def _describe(self, tok: _Token) -> str:
        if tok.kind is _Tok.EOF:
            return "the end of the filter"
        return f"{tok.kind.value} {self.source[tok.position:tok.end]!r}"

    def _expect(self, kind: _Tok, what: str) -> _Token:
        if self.tok.kind is not kind:
            raise self._fail(f"Expected {what}, found {self._describe(self.tok)}")
        return self._advance()

    # -- grammar
    def parse(self) -> Node:
        node = self._or()
        if self.tok.kind is not _Tok.EOF:
            raise self._fail(f"Expected AND, OR or the end of the filter, found {self._describe(self.tok)}")
        return node

    def _or(self) -> Node:
        clauses = [self._and()]
        while self._at_keyword("OR"):
            self._advance()
            clauses.append(self._and())
        return clauses[0] if len(clauses) == 1 else Or(tuple(clauses))

    def _and(self) -> Node:
        clauses = [self._primary()]
        while self._at_keyword("AND"):
            self._advance()
            clauses.append(self._primary())
        return clauses[0] if len(clauses) == 1 else And(tuple(clauses))

    def _primary(self) -> Node:
        if self.tok.kind is _Tok.LPAREN:
            if self.depth == _MAX_DEPTH:  # keeps the parser and SQL compilation off the recursion limit
                raise self._fail(f"Parentheses nest deeper than {_MAX_DEPTH} levels")
            self.depth += 1
            self._advance()
            node = self._or()
            self._expect(_Tok.RPAREN, "')'")
            self.depth -= 1
            return node
        return self._comparison()

    def _comparison(self) -> Comparison:
        if self.tok.kind is not _Tok.WORD:
            raise self._fail(f"Expected a field such as attributes.status or tags.`key`, "
                             f"found {self._describe(self.tok)}")
        ref = _resolve_field(self._advance(), self.source)
        op_tok = self.tok
        op = self._operator()
        ftype = _field_type(ref)
        if op not in _ALLOWED_OPS[ftype]:
            if op in _NUMERIC_ONLY:
                numeric = ", ".join(n for n, (t, _) in _ATTRIBUTES.items() if t is _Type.NUMBER)
                raise self._fail(f"{op.value} compares numbers, but {ref} is not numeric; numeric "
                                 f"comparators work on {numeric}", op_tok)
            allowed = ", ".join(o.value for o in Op if o in _ALLOWED_OPS[ftype])
            raise self._fail(f"{ref} does not support {op.value}; use one of: {allowed}", op_tok)
        value: Value | tuple[Value, ...] | None
        if op in (Op.IS_NULL, Op.IS_NOT_NULL):
            value = None
        elif op in (Op.IN, Op.NOT_IN):
            value = self._value_list(ref, ftype)
        else:
            value = self._value(ref, ftype, op)
        return Comparison(ref, op, value, op_tok.position)

    def _operator(self) -> Op:
        tok = self.tok
        if tok.kind is _Tok.OP:
            self._advance()
            return Op(tok.text)
        if tok.kind is _Tok.KEYWORD:
            if tok.text in ("LIKE", "ILIKE", "IN"):
                self._advance()
                return Op(tok.text)
            if tok.text == "NOT":
                self._advance()
                if not self._at_keyword("IN"):
                    raise self._fail("Expected IN after NOT")
                self._advance()
                return Op.NOT_IN
            if tok.text == "IS":
                self._advance()
                negated = self._at_keyword("NOT")
                if negated:
                    self._advance()
                if not self._at_keyword("NULL"):
                    raise self._fail("Expected NULL after IS" + (" NOT" if negated else ""))
                self._advance()
                return Op.IS_NOT_NULL if negated else Op.IS_NULL
        raise self._fail("Expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, "
                         f"IS NULL, IS NOT NULL), found {self._describe(tok)}")

    def _value_list(self, ref: FieldRef, ftype: _Type) -> tuple[Value, ...]:
        self._expect(_Tok.LPAREN, "'(' to start the IN list")
        values = [self._value(ref, ftype, Op.IN)]
        while self.tok.kind is _Tok.COMMA:
            self._advance()
            values.append(self._value(ref, ftype, Op.IN))
        self._expect(_Tok.RPAREN, "',' or ')' in the IN list")
        return tuple(values)

    def _value(self, ref: FieldRef, ftype: _Type, op: Op) -> Value:
        tok = self.tok
        raw: Scalar
        if tok.kind in (_Tok.STRING, _Tok.NUMBER):
            assert tok.value is not None  # always set for these kinds
            raw = tok.value
        elif self._at_keyword("TRUE", "FALSE"):
            raw = tok.text == "TRUE"
        else:
            raise self._fail(f"Expected a value (a quoted string, a number, true or false), "
                             f"found {self._describe(tok)}")
        self._advance()
        if op in (Op.LIKE, Op.ILIKE):
            if not isinstance(raw, str):
                raise self._fail(f"{op.value} needs a quoted pattern, e.g. '%foo%'", tok)
            if (len(raw) - len(raw.rstrip("\\"))) % 2:  # PostgreSQL rejects a dangling escape
                raise self._fail(f"{op.value} pattern ends with a lone escape character '\\'", tok)
        if ftype is _Type.NUMBER:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise self._fail(f"{ref} is numeric (milliseconds); expected a number, not a {_kind(raw)}", tok)
        elif ftype in (_Type.STATE, _Type.SPAN_STATUS):
            names = _STATES if ftype is _Type.STATE else _SPAN_STATUSES
            canon = names.get(raw.upper()) if isinstance(raw, str) else None
            if canon is None:
                shown = ", ".join(dict.fromkeys(names.values()))
                raise self._fail(f"Invalid {ftype.value} {_show(raw)}; expected one of: {shown}", tok)
            raw = canon
        elif ftype is not _Type.ASSESSMENT and not isinstance(raw, str):
            raise self._fail(f"{ref} is a string field; expected a quoted string, not a {_kind(raw)}", tok)
        return Value(raw, tok.position)


def _kind(raw: Scalar) -> str:
    if isinstance(raw, bool):
        return "boolean"
    return "number" if isinstance(raw, (int, float)) else "string"


def _show(raw: Scalar) -> str:
    return repr(raw) if isinstance(raw, str) else str(raw).lower() if isinstance(raw, bool) else str(raw)
