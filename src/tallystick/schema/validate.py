"""Parse and validate a session body, reporting every violation with its field path.

msgspec alone stops at the first error and keeps the last of duplicate keys, so
validation walks the Structs' own type information (``msgspec.inspect``) over a
tree decoded by the standard library, which can see duplicates. The rules come
from the Structs; nothing here restates a pattern or a limit.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi

from tallystick.schema._rules import (
    ATTRIBUTE_VALUE_MAX_LENGTH,
    INT_MAX,
    INT_MIN,
    PATTERN_DESCRIPTIONS,
    TIMESTAMP_PATTERN,
)
from tallystick.schema.errors import InvalidSession, ValidationError
from tallystick.schema.fastpath import fast_session
from tallystick.schema.session import ORDERED_FIELDS, Session

_INVALID_VALUE_MAX = 256
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Object(dict[str, Any]):
    """A JSON object that remembers which of its keys appeared more than once."""

    __slots__ = ("duplicates",)
    duplicates: list[str]


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicates = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    else:
        obj.duplicates = []
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def decode_json(body: bytes) -> Any:
    """Decode JSON strictly: UTF-8 only, no NaN/Infinity, duplicates kept visible.

    Raises InvalidSession with a single ``json`` or ``utf8`` error. Nesting is bounded
    by the parser itself: it stops at the interpreter's recursion limit (about 1000
    levels, a valid body needs 6), so a deep body costs microseconds, not a deep walk.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSession(
            [ValidationError("", "utf8", None, f"request body is not valid UTF-8 (byte {exc.start})")]
        ) from None
    try:
        return json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidSession([ValidationError("", "json", None, f"request body is not valid JSON: {exc}")]) from None


def _shown(value: Any) -> Any:
    """A JSON-safe, bounded rendering of an offending value for the error body."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            value = value.encode("utf-8", "backslashreplace").decode("ascii")
        return value if len(value) <= _INVALID_VALUE_MAX else value[:_INVALID_VALUE_MAX] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
        return str(value)
    if isinstance(value, dict | list):
        return None
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _printable(text: str) -> str:
    """``text`` with unpaired surrogates escaped, so the error body can be encoded as UTF-8."""
    return text if text.isascii() or not _SURROGATE.search(text) else text.encode("utf-8", "backslashreplace").decode()


def _err(errors: list[ValidationError], key: str, rule: str, value: Any, message: str) -> None:
    key = _printable(key)
    errors.append(ValidationError(key, rule, _shown(value), f"{key or 'body'} {_printable(message)}"))


def _type_error(errors: list[ValidationError], key: str, value: Any, expected: str) -> None:
    _err(errors, key, "type", value, f"must be {expected}, not {_json_type(value)}")


def _str_checks(t: mi.StrType, value: str, key: str, errors: list[ValidationError]) -> bool:
    ok = True
    if not value.isascii() and _SURROGATE.search(value):
        _err(errors, key, "utf8", value, "contains an unpaired UTF-16 surrogate")
        return False
    if t.max_length is not None and len(value) > t.max_length:
        _err(errors, key, "maxLength", value, f"must be at most {t.max_length} characters")
        ok = False
    if t.min_length is not None and len(value) < t.min_length:
        _err(errors, key, "minLength", value, f"must be at least {t.min_length} characters")
        ok = False
    if t.pattern is not None and not _compiled(t.pattern).search(value):
        _err(errors, key, "pattern", value, f"must be {_pattern_text(t.pattern)}")
        ok = False
    return ok


def _pattern_text(pattern: str) -> str:
    return PATTERN_DESCRIPTIONS.get(pattern, f"text matching {pattern}")


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _check(value: Any, t: mi.Type, key: str, errors: list[ValidationError]) -> None:
    """Append every violation of type ``t`` by ``value`` at field path ``key``."""
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):
        _check_union(value, t, key, errors)
    elif isinstance(t, mi.StructType):
        _check_struct(value, t, key, errors)
    elif isinstance(t, mi.StrType):
        if not isinstance(value, str):
            _type_error(errors, key, value, "a string")
        else:
            _str_checks(t, value, key, errors)
    elif isinstance(t, mi.DateTimeType):
        _check_datetime(value, key, errors)
    elif isinstance(t, mi.BoolType):
        if not isinstance(value, bool):
            _type_error(errors, key, value, "a boolean")
    elif isinstance(t, mi.IntType):
        _check_int(value, t, key, errors)
    elif isinstance(t, mi.FloatType):
        _check_float(value, key, errors)
    elif isinstance(t, mi.NoneType):
        if value is not None:
            _type_error(errors, key, value, "null")
    elif isinstance(t, mi.DictType):
        _check_dict(value, t, key, errors)
    elif isinstance(t, mi.ListType):
        _check_list(value, t, key, errors)
    elif not isinstance(t, mi.AnyType):  # pragma: no cover - a Struct uses a type we do not know
        raise AssertionError(f"validator does not know {t!r}")


def _check_int(value: Any, t: mi.IntType, key: str, errors: list[ValidationError]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _type_error(errors, key, value, "an integer")
    elif (t.ge is not None and value < t.ge) or (t.le is not None and value > t.le):
        _err(errors, key, "range", value, "must fit a 64-bit signed integer")


def _check_float(value: Any, key: str, errors: list[ValidationError]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _type_error(errors, key, value, "a number")
    elif isinstance(value, float) and not math.isfinite(value):
        _err(errors, key, "range", value, "must be a finite number that fits a 64-bit float")


def _check_datetime(value: Any, key: str, errors: list[ValidationError]) -> None:
    if not isinstance(value, str):
        _type_error(errors, key, value, "an RFC 3339 date-time string")
        return
    if not _compiled(TIMESTAMP_PATTERN).search(value):
        _err(errors, key, "dateTime", value, "must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z")
        return
    try:
        parsed = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        _err(errors, key, "dateTime", value, "must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z")
        return
    if parsed.tzinfo is None:
        _err(errors, key, "dateTime", value, "must have a time-zone offset such as Z or +02:00")
        return
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        _err(errors, key, "dateTime", value, "must fall between the years 0001 and 9999 in UTC")


def _check_union(value: Any, t: mi.UnionType, key: str, errors: list[ValidationError]) -> None:
    if value is None:
        if not t.includes_none:
            _type_error(errors, key, value, _describe(t))
        return
    for member in t.types:
        if _accepts_kind(member, value):
            _check(value, member, key, errors)
            return
    _type_error(errors, key, value, _describe(t))


def _accepts_kind(t: mi.Type, value: Any) -> bool:
    """Whether ``t`` is the union member that ``value``'s JSON kind belongs to."""
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(value, bool):
        return isinstance(t, mi.BoolType)
    if isinstance(value, int):
        return isinstance(t, mi.IntType | mi.FloatType)
    if isinstance(value, float):
        return isinstance(t, mi.FloatType)
    if isinstance(value, str):
        return isinstance(t, mi.StrType | mi.DateTimeType)
    if isinstance(value, list):
        return isinstance(t, mi.ListType)
    if isinstance(value, dict):
        return isinstance(t, mi.DictType | mi.StructType)
    return False


_KIND_NAMES = {
    mi.StrType: "a string",
    mi.IntType: "an integer",
    mi.FloatType: "a number",
    mi.BoolType: "a boolean",
    mi.NoneType: "null",
    mi.DictType: "an object",
    mi.StructType: "an object",
    mi.ListType: "an array",
    mi.DateTimeType: "an RFC 3339 date-time string",
}


def _unwrapped(t: mi.Type) -> mi.Type:
    while isinstance(t, mi.Metadata):
        t = t.type
    return t


def _describe(t: mi.Type) -> str:
    if isinstance(t, mi.UnionType):
        names = list(dict.fromkeys(_KIND_NAMES.get(type(_unwrapped(m)), "a value") for m in t.types))
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return _KIND_NAMES.get(type(t), "a value")


def _report_duplicates(value: dict[str, Any], key: str, errors: list[ValidationError]) -> None:
    for dup in getattr(value, "duplicates", ()):
        _err(errors, _join(key, dup), "duplicateKey", dup, "appears more than once")


def _check_struct(value: Any, t: mi.StructType, key: str, errors: list[ValidationError]) -> None:
    if not isinstance(value, dict):
        _type_error(errors, key, value, "an object")
        return
    _report_duplicates(value, key, errors)
    known = set()
    for f in t.fields:
        known.add(f.encode_name)
        path = _join(key, f.encode_name)
        if f.encode_name not in value:
            if f.required:
                _err(errors, path, "required", None, "is required")
            continue
        _check(value[f.encode_name], f.type, path, errors)
    for name in value:
        if name not in known:
            _err(errors, _join(key, name), "unknownField", name, "is not a field of this object")
    for struct, earlier, later in ORDERED_FIELDS:
        if t.cls is struct:
            _check_order(value, key, earlier, later, errors)


def _exact(value: Any) -> tuple[datetime, int]:
    """The instant of an RFC 3339 text to the nanosecond (as Abacus compares them): whole seconds, then
    nanoseconds (digits past the ninth cut, as Go's parser does). msgspec rounds to microseconds."""
    whole, _, rest = value.partition(".")
    offset = rest.lstrip("0123456789")
    fraction = rest[: len(rest) - len(offset)]
    return msgspec.convert(whole + offset, datetime), int(fraction[:9].ljust(9, "0") or 0)


def _check_order(value: dict[str, Any], key: str, earlier: str, later: str, errors: list[ValidationError]) -> None:
    try:
        start = msgspec.convert(value.get(earlier), datetime)
        end = msgspec.convert(value.get(later), datetime)
        if start.tzinfo is None or end.tzinfo is None:
            return
        if end == start:  # equal to the microsecond: the nanoseconds decide
            start, end = _exact(value[earlier]), _exact(value[later])  # type: ignore[assignment]
        before = end < start
    except (msgspec.ValidationError, OverflowError):
        return  # already reported as a bad date-time (or missing)
    if before:
        _err(errors, _join(key, later), "order", value[later], f"must not be before {earlier}")


def _check_dict(value: Any, t: mi.DictType, key: str, errors: list[ValidationError]) -> None:
    if not isinstance(value, dict):
        _type_error(errors, key, value, "an object")
        return
    _report_duplicates(value, key, errors)
    if t.max_length is not None and len(value) > t.max_length:
        _err(errors, key, "maxProperties", len(value), f"must have at most {t.max_length} keys")
    for name, item in value.items():
        path = _join(key, name)
        if isinstance(t.key_type, mi.StrType) and not _str_checks(t.key_type, name, path, []):
            rule = _pattern_text(t.key_type.pattern or "")
            _err(
                errors,
                path,
                "keyPattern",
                name,
                f"is not an allowed key: use {rule}, at most {t.key_type.max_length} characters",
            )
        _check(item, t.value_type, path, errors)


def _check_list(value: Any, t: mi.ListType, key: str, errors: list[ValidationError]) -> None:
    if not isinstance(value, list):
        _type_error(errors, key, value, "an array")
        return
    if t.max_length is not None and len(value) > t.max_length:
        _err(errors, key, "maxItems", len(value), f"must have at most {t.max_length} items")
        return  # do not spend time on the items of an oversized list
    for i, item in enumerate(value):
        _check(item, t.item_type, f"{key}[{i}]", errors)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


@cache
def _session_type() -> mi.Type:
    return mi.type_info(Session)


def _check_value_lengths(tree: Any, limit: int, errors: list[ValidationError]) -> None:
    """String attribute values over ``limit`` code points (a server setting, so not in the Structs)."""
    if not isinstance(tree, dict):
        return
    owners: list[tuple[str, Any]] = [("", tree)]
    for field in ("events", "spans"):
        items = tree.get(field)
        if isinstance(items, list):
            owners.extend((f"{field}[{i}]", item) for i, item in enumerate(items))
    for key, owner in owners:
        attributes = owner.get("attributes") if isinstance(owner, dict) else None
        if not isinstance(attributes, dict):
            continue
        for name, value in attributes.items():
            if isinstance(value, str) and len(value) > limit:
                _err(
                    errors,
                    _join(_join(key, "attributes"), name),
                    "maxLength",
                    value,
                    f"must be at most {limit} characters",
                )


def validation_errors(tree: Any, max_value_chars: int = ATTRIBUTE_VALUE_MAX_LENGTH) -> list[ValidationError]:
    """Every violation of the session contract in a decoded JSON value.

    ``max_value_chars``: the longest string attribute value allowed, in code points.
    """
    errors: list[ValidationError] = []
    _check(tree, _session_type(), "", errors)
    _check_value_lengths(tree, max_value_chars, errors)
    return errors


def parse_session(body: bytes, max_value_chars: int = ATTRIBUTE_VALUE_MAX_LENGTH) -> Session:
    """Decode and validate one session body; raise InvalidSession listing every violation.

    A valid body takes the fast path (``fastpath``); any other is decided and worded
    by the full validator.
    """
    session = fast_session(body, max_value_chars)
    if session is not None:
        return session
    return session_from_tree(decode_json(body), max_value_chars)


def session_from_tree(tree: Any, max_value_chars: int = ATTRIBUTE_VALUE_MAX_LENGTH) -> Session:
    """Validate a decoded JSON value as a session; raise InvalidSession listing every violation."""
    errors = validation_errors(tree, max_value_chars)
    if errors:
        raise InvalidSession(errors)
    return msgspec.convert(tree, Session)
