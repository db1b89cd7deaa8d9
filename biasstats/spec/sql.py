"""The grammar of ``[data] derive`` and ``filters``: a whitelist over a parsed SQL expression.

polars runs these expressions with its SQL engine, which also resolves subqueries and table
functions (``read_csv('/etc/passwd')``, ``read_parquet('http://…')``) while it *parses* an
expression. So a spec's expression is never handed to polars until :func:`check_sql` has
accepted it: the text is tokenised and parsed by sqlglot (PostgreSQL dialect, the one polars
follows), and every node of the tree must be one of

* a column reference (quoted nested paths such as ``"choices[0].text"`` included), a literal
  (string, number, boolean, NULL), ``x[i]`` list indexing;
* arithmetic (``+ - * / %``, ``||``), comparison (``= != <> < <= > >=``, ``IS [NOT] NULL``,
  ``IS [NOT] DISTINCT FROM``), boolean (``AND OR NOT``) and regex match (``~ ~* !~ !~*``)
  operators, parentheses;
* ``CASE``, ``CAST`` / ``TRY_CAST`` / ``::`` to a scalar type, ``IN`` with a list of
  literals, ``BETWEEN``, ``LIKE`` / ``ILIKE``;
* a call of one of :data:`FUNCTIONS` (string, regex, math, date, null handling,
  list-to-string).

Anything else — a subquery, a table function, ``COLUMNS(...)``, a comment, ``;``, a
dollar-quoted or prefixed (``E''``, ``X''``) string — is refused with one line naming the
token. Checking reads nothing, opens no file and no socket: it is pure parsing.
"""

from __future__ import annotations

import functools
import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from biasstats.errors import SpecError
from biasstats.limits import SQL, check_expression

__all__ = ["FUNCTIONS", "check_sql", "sql_columns"]

DIALECT = "postgres"

# Scalar functions a [data] expression may call (polars SQL names, lower case).
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "string": ("bit_length", "char_length", "character_length", "concat", "concat_ws",
               "ends_with", "initcap", "left", "length", "lower", "ltrim", "normalize",
               "octet_length", "replace", "reverse", "right", "rtrim",
               "split_part", "starts_with", "strpos", "substr", "substring", "trim", "upper"),
    "regex": ("regexp_like", "regexp_replace"),
    "math": ("abs", "cbrt", "ceil", "ceiling", "div", "exp", "floor", "ln", "log", "log10",
             "log1p", "log2", "mod", "pi", "pow", "power", "round", "sign", "sqrt",
             "greatest", "least", "degrees", "radians", "sin", "cos", "tan", "asin", "acos",
             "atan", "atan2"),
    "date": ("date", "date_part", "extract", "strftime", "strptime", "timestamp"),
    "null handling": ("coalesce", "ifnull", "nullif", "if"),
    "list": ("array_to_string", "array_length", "array_get", "array_contains",
             "array_lower", "array_upper", "array_mean", "array_sum", "array_unique",
             "array_reverse", "string_to_array"),
}
_NAMES = frozenset(n for names in FUNCTIONS.values() for n in names)

# Scalar types a CAST may target.
_SCALAR_TYPES = frozenset(
    getattr(exp.DataType.Type, t) for t in (
        "BOOLEAN", "TINYINT", "SMALLINT", "INT", "BIGINT", "UTINYINT", "USMALLINT", "UINT",
        "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "VARCHAR", "CHAR", "TEXT", "NVARCHAR",
        "NCHAR", "DATE", "TIME", "TIMESTAMP", "DATETIME", "TIMESTAMPTZ", "INTERVAL",
    ) if hasattr(exp.DataType.Type, t)
)

# Syntax nodes (not function calls) an expression may contain.
_NODES: tuple[type, ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Neg,
    exp.Not, exp.And, exp.Or, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.DPipe,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Case, exp.If, exp.Cast,
    exp.TryCast, exp.DataType, exp.DataTypeParam, exp.Bracket, exp.Var, exp.IntDiv,
    exp.RegexpLike, exp.RegexpILike,
)

# Tokens an expression may be written with (the lexical layer is checked too, so that
# polars' tokeniser and sqlglot's cannot read the same text differently: no comments,
# no dollar-quoted, escaped, national, unicode, hex or bit strings, no ';' or parameters).
_REFUSED_TOKENS = {
    "HEREDOC_STRING": "a dollar-quoted string",
    "RAW_STRING": "a raw string",
    "BYTE_STRING": "an escaped (E'') string",
    "NATIONAL_STRING": "a national (N'') string",
    "UNICODE_STRING": "a unicode (U&'') string",
    "HEX_STRING": "a hex string",
    "BIT_STRING": "a bit string",
    "SEMICOLON": "';'",
    "PARAMETER": "a parameter",
    "PLACEHOLDER": "a placeholder",
    "SESSION_PARAMETER": "a parameter",
}


def _quote(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _function_name(node: exp.Func) -> str:
    """The SQL name of a call node, lower case (``read_csv``, ``coalesce``, ...)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


@functools.cache
def _allowed_classes() -> frozenset[type]:
    """The sqlglot node classes the whitelisted function names parse to (``ifnull`` parses
    as Coalesce, ``strpos`` as StrPosition, ...)."""
    out = set()
    for name in _NAMES:
        for args in ("x", "x, 'a'", "x, 'a', 'b'", "", "year FROM d"):
            try:
                node = sqlglot.parse_one(f"{name}({args})", dialect=DIALECT)
            except (ParseError, TokenError):
                continue
            if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous):
                out.add(type(node))
    return frozenset(out)


def _refusal(node: exp.Expression) -> str | None:
    """Why ``node`` is not allowed (the token named), or None when it is."""
    if isinstance(node, (exp.Select, exp.Subquery, exp.Query)):
        return "a subquery (SELECT ...) is not allowed"
    if isinstance(node, (exp.Table, exp.From)):
        return "a table reference is not allowed"
    if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")):
        return "a subquery (SELECT ...) is not allowed"
    if isinstance(node, exp.Func) and not isinstance(node, _NODES):
        if isinstance(node, exp.Anonymous):
            name = _function_name(node)
            if name not in _NAMES:
                return f"function {name}() is not allowed"
            return None
        if type(node) not in _allowed_classes():
            return f"function {_function_name(node)}() is not allowed"
        return None
    if isinstance(node, exp.DataType):
        if node.this not in _SCALAR_TYPES or node.expressions and not all(
                isinstance(e, exp.DataTypeParam) for e in node.expressions):
            return f"CAST to {node.sql(dialect=DIALECT)} is not allowed (scalar types only)"
        return None
    if isinstance(node, exp.In):
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            return "IN takes a list of literals, e.g. x IN ('a', 'b')"
        if not all(isinstance(e, (exp.Literal, exp.Boolean, exp.Null))
                   or isinstance(e, exp.Neg) and isinstance(e.this, exp.Literal)
                   for e in node.expressions):
            return "IN takes a list of literals, e.g. x IN ('a', 'b')"
        return None
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
        return "'*' is not allowed"
    if isinstance(node, _NODES):
        return None
    return f"{type(node).__name__} ({_quote(node.sql(dialect=DIALECT))}) is not allowed"


def _allowed_summary() -> str:
    return ("columns, literals, operators, CASE, CAST, IN / BETWEEN / LIKE and the functions "
            "listed by 'biasstats spec'")


def _tokens(text: str, where: str):
    try:
        tokens = sqlglot.tokenize(text, dialect=DIALECT)
    except TokenError as e:
        raise SpecError(f"{where} '{_quote(text)}' is not a valid SQL expression "
                        f"({_first(e, text)})") from None
    for tok in tokens:
        if tok.comments:
            raise SpecError(f"{where} '{_quote(text)}': comments are not allowed in an "
                            "expression")
        kind = tok.token_type.name
        if kind in _REFUSED_TOKENS:
            raise SpecError(f"{where} '{_quote(text)}': {_REFUSED_TOKENS[kind]} is not allowed")
    return tokens


def _first(e: Exception, text: str = "") -> str:
    """The parser's complaint in the user's terms (one clause, naming the column)."""
    errors = getattr(e, "errors", None)
    if isinstance(e, TokenError) and text.count("'") % 2:
        return "a text in single quotes is not closed: write it as 'text'"
    if errors:
        err = errors[0]
        desc = str(err.get("description") or "").strip().rstrip(".")
        col = err.get("col")
        if desc.startswith("Expecting )"):
            return f"a '(' is not closed by the end of the expression (column {col})"
        if desc.startswith("Invalid expression / Unexpected token") and col and 0 < col <= len(text):
            what = text[col - 1]
            extra = " without its '('" if what == ")" else ""
            return f"unexpected '{what}'{extra} at column {col}"
        if desc.startswith("Required keyword") or "Expected" in desc:
            before = text[:col].split() if col else []
            if before:
                return f"incomplete expression: something is missing after '{before[-1]}' (column {col})"
            desc = "incomplete expression"
        desc = re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", desc)
        return f"{desc} near column {col}" if col else desc
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def parse_sql(text: str, where: str) -> exp.Expression:
    """Parse and check one ``[data]`` expression; return its tree (one-line SpecError)."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"{where}: expected a non-empty SQL expression")
    if "\x00" in text:
        raise SpecError(f"{where}: the expression contains a NUL character")
    check_expression(text, SQL, where)
    _tokens(text, where)
    if re.search(r"\bIN\s*\[", text, re.IGNORECASE):
        raise SpecError(f"{where} '{_quote(text)}': IN takes a list in parentheses, e.g. "
                        "x IN ('a', 'b')")
    try:
        tree = sqlglot.parse_one(text, dialect=DIALECT)
    except (ParseError, TokenError) as e:
        raise SpecError(f"{where} '{_quote(text)}' is not a valid SQL expression "
                        f"({_first(e, text)})") from None
    except RecursionError:  # pragma: no cover - the limits above come first
        raise SpecError(f"{where}: the expression nests too deeply") from None
    if tree is None:
        raise SpecError(f"{where}: expected a non-empty SQL expression")
    for node in tree.walk():
        if isinstance(node, exp.Alias):
            raise SpecError(
                f"{where} '{_quote(text)}': '{node.alias}' follows a complete expression "
                f"('{_quote(node.this.sql(dialect=DIALECT))}'); join conditions with AND / OR, and "
                "write text in single quotes"
            )
        why = _refusal(node)
        if why is not None:
            raise SpecError(f"{where} '{_quote(text)}': {why}; an expression may use "
                            f"{_allowed_summary()}")
    return tree


def check_sql(text: str, where: str) -> str:
    """Return ``text`` when it is an allowed ``[data]`` expression; else raise a one-line
    :class:`SpecError` naming ``where`` and the refused token."""
    parse_sql(text, where)
    return text


def sql_columns(text: str) -> list[str]:
    """The column names an allowed expression references (as written, quotes removed)."""
    tree = sqlglot.parse_one(text, dialect=DIALECT)
    out: list[str] = []
    for col in tree.find_all(exp.Column):
        name = ".".join(p.name for p in col.parts)
        if name not in out:
            out.append(name)
    return out
