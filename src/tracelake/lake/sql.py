"""Read-only SQL over the lake: parse, check grants, run on an embedded DuckDB.

1. The text is parsed with sqlglot (DuckDB dialect). It must be exactly one query
   (``SELECT``, set operations, ``WITH``); any other statement is refused with a
   ``InvalidRequest`` naming it.
2. Every table it references (CTE names aside) must be a lake table — ``table``,
   ``schema.table`` or ``catalog.schema.table`` — and the caller must hold ``SELECT`` on it;
   table functions (``read_csv(...)``, ``'file.parquet'``) are refused.
3. The references are rewritten to private names bound to the tables' current snapshots
   (Arrow datasets from ``deltalake``), and the query runs on a fresh in-memory DuckDB with
   external access disabled and its configuration locked: even a query that slipped past
   the parser cannot read or write files.

Results are capped at ``max_rows`` (``truncated`` says when more existed) and the query is
interrupted after ``timeout_s``.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from tracelake.errors import InvalidRequest, PermissionDenied
from tracelake.lake.catalog import Catalog, GrantCheck
from tracelake.lake.tables import TableSpec

if TYPE_CHECKING:
    from tracelake.auth.model import Principal

DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_S = 60.0


@dataclass(slots=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool
    tables: list[str] = field(default_factory=list)  # full names of the tables read


@dataclass(frozen=True, slots=True)
class CheckedQuery:
    sql: str  # rewritten for DuckDB
    bindings: dict[str, TableSpec]  # private name -> table
    tables: list[str]  # full names, in order of first reference


def check_query(catalog: Catalog, text: str, principal: Principal | None = None,
                grant_check: GrantCheck | None = None) -> CheckedQuery:
    """Parse and authorise ``text`` (see the module docstring); raise on anything refused."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("sql is required: a SELECT query over the lake tables")
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise InvalidRequest(f"cannot parse the SQL: {exc}") from None
    if len(statements) != 1:
        raise InvalidRequest(f"exactly one statement is allowed, got {len(statements)}")
    stmt = statements[0]
    if not isinstance(stmt, exp.Query):
        raise InvalidRequest(f"only read-only queries (SELECT) are allowed, not {_kind(stmt)}")
    for node in stmt.walk():
        if isinstance(node, (exp.DML, exp.Create, exp.Drop, exp.Alter, exp.Command, exp.Pragma, exp.Set)):
            raise InvalidRequest(f"only read-only queries (SELECT) are allowed, not {_kind(node)} (inside the query)")
    ctes = {cte.alias_or_name.lower() for cte in stmt.find_all(exp.CTE)}
    bindings: dict[str, TableSpec] = {}
    names: dict[str, str] = {}  # full name -> private name
    for table in list(stmt.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            raise InvalidRequest(f"table functions are not allowed ({table.this.sql(dialect='duckdb')}): "
                                 "query the lake tables by name")
        parts = [p for p in (table.catalog, table.db, table.name) if p]
        if len(parts) == 1 and parts[0].lower() in ctes:
            continue
        spec = catalog.resolve(parts)
        full = catalog.full_name(spec)
        private = names.setdefault(full, f"__lake_{len(names)}")
        bindings[private] = spec
        alias = table.alias or table.name
        table.replace(exp.Table(this=exp.to_identifier(private), alias=exp.TableAlias(this=exp.to_identifier(alias))))
    tables = list(names)
    if principal is not None and grant_check is not None and tables:
        allowed = grant_check(principal, tables)
        missing = [t for t in tables if t not in allowed]
        if missing:
            raise PermissionDenied(f"SELECT permission on table{'s' if len(missing) > 1 else ''} "
                                   f"{', '.join(missing)} is required")
    return CheckedQuery(stmt.sql(dialect="duckdb"), bindings, tables)


def run_query(catalog: Catalog, text: str, principal: Principal | None = None,
              grant_check: GrantCheck | None = None, max_rows: int = DEFAULT_MAX_ROWS,
              timeout_s: float = DEFAULT_TIMEOUT_S) -> QueryResult:
    """Check ``text`` and run it over the tables' current snapshots."""
    checked = check_query(catalog, text, principal, grant_check)
    con = duckdb.connect(":memory:")
    timer = threading.Timer(timeout_s, con.interrupt)
    try:
        for private, spec in checked.bindings.items():
            table = catalog.lake.open(spec)
            source: Any = spec.schema.empty_table()
            if table is not None:
                source = table.to_pyarrow_dataset(schema=view_schema(table.to_pyarrow_dataset().schema))
            con.register(private, source)
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        timer.start()
        try:
            reader = con.sql(checked.sql).to_arrow_reader(1024)
            batches, count = _take(reader, max_rows + 1)
        except duckdb.InterruptException:
            raise InvalidRequest(f"the query ran longer than {timeout_s:g} s and was stopped") from None
        except duckdb.Error as exc:
            raise InvalidRequest(f"query failed: {exc}") from None
    finally:
        timer.cancel()
        con.close()
    result = pa.Table.from_batches(batches, schema=reader.schema)
    truncated = count > max_rows
    if truncated:
        result = result.slice(0, max_rows)
    return QueryResult(columns=result.column_names, types=[str(f.type) for f in result.schema],
                       rows=_rows(result), truncated=truncated, tables=checked.tables)


def view_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every string as ``string_view``, nested ones too.

    Files rewritten by a MERGE or DELETE (DataFusion) store strings as ``string_view`` while
    older files store ``string``; a pyarrow dataset declared with ``string`` then fails any
    pushed-down filter on such a column ("Function 'equal' has no kernel matching input
    types (string, string_view)"). Declared as ``string_view``, both kinds of file are read.
    """
    return pa.schema([pa.field(f.name, _view(f.type), f.nullable, f.metadata) for f in schema])


def _view(typ: pa.DataType) -> pa.DataType:
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return pa.string_view()
    if pa.types.is_map(typ):
        return pa.map_(_view(typ.key_type), _view(typ.item_type))
    if pa.types.is_list(typ):
        return pa.list_(pa.field(typ.value_field.name, _view(typ.value_type), typ.value_field.nullable))
    if pa.types.is_struct(typ):
        return pa.struct([pa.field(f.name, _view(f.type), f.nullable) for f in typ])
    return typ


def _take(reader: pa.RecordBatchReader, limit: int) -> tuple[list[pa.RecordBatch], int]:
    batches, count = [], 0
    for batch in reader:
        batches.append(batch)
        count += batch.num_rows
        if count >= limit:
            break
    return batches, count


def _rows(table: pa.Table) -> list[list[Any]]:
    columns = [_plain(col.type, col.to_pylist()) for col in table.columns]
    return [list(row) for row in zip(*columns)] if columns else []


def _plain(typ: pa.DataType, values: list[Any]) -> list[Any]:
    """Maps as dicts (Arrow gives lists of pairs), recursively."""
    convert = _converter(typ)
    return values if convert is None else [None if v is None else convert(v) for v in values]


def _converter(typ: pa.DataType) -> Callable[[Any], Any] | None:
    if pa.types.is_map(typ):
        item = _converter(typ.item_type)
        return lambda v: {k: (x if item is None or x is None else item(x)) for k, x in v}
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        inner = _converter(typ.value_type)
        return None if inner is None else (lambda v: [None if x is None else inner(x) for x in v])
    if pa.types.is_struct(typ):
        fields = {f.name: _converter(f.type) for f in typ}
        if all(c is None for c in fields.values()):
            return None
        return lambda v: {k: (x if fields.get(k) is None or x is None else fields[k](x)) for k, x in v.items()}
    return None


def _kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return type(node).__name__.upper()


__all__ = ["CheckedQuery", "QueryResult", "check_query", "run_query", "view_schema"]
