"""Hypothesis strategies for valid sessions, generated from the Structs themselves.

The schema's own generator: it walks the same ``msgspec.inspect`` type information as
the validator, so a new field, pattern or limit in ``session.py`` is generated
without touching this file. Collections are kept small (``max_items``) for speed;
limits themselves are tested with hand-made sessions.

Needs ``hypothesis`` (a development dependency); nothing at run time imports this.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from tallystick.schema.session import ORDERED_FIELDS, Session

_EARLIEST = datetime(1971, 1, 1)  # well inside what every consumer converts without overflow
_LATEST = datetime(2199, 12, 31)


def _offsets() -> st.SearchStrategy[timezone]:
    minutes = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)
    return st.one_of(st.just(UTC), minutes.map(lambda m: timezone(timedelta(minutes=m))))


def _rfc3339(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") and value.tzinfo is UTC else text


def timestamps() -> st.SearchStrategy[str]:
    """RFC 3339 date-times with an offset, as a client would send them."""
    return st.datetimes(min_value=_EARLIEST, max_value=_LATEST, timezones=_offsets()).map(_rfc3339)


def _strings(t: mi.StrType, max_items: int) -> st.SearchStrategy[str]:
    if t.pattern is not None:
        found: st.SearchStrategy[str] = st.from_regex(t.pattern)
        limit = t.max_length
        return found if limit is None else found.filter(lambda s: len(s) <= limit)
    top = t.max_length if t.max_length is not None else 64
    return st.text(min_size=t.min_length or 0, max_size=min(top, 8 * max_items))


def values(t: mi.Type, max_items: int = 3) -> st.SearchStrategy[Any]:
    """JSON-ready values (dicts, lists, str, numbers) that type ``t`` accepts."""
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):
        return st.one_of([values(member, max_items) for member in t.types])
    if isinstance(t, mi.StructType):
        return _struct(t, max_items)
    if isinstance(t, mi.StrType):
        return _strings(t, max_items)
    if isinstance(t, mi.DateTimeType):
        return timestamps()
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.IntType):
        return st.integers(min_value=t.ge, max_value=t.le)
    if isinstance(t, mi.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.DictType):
        keys = values(t.key_type, max_items)
        return st.dictionaries(
            keys, values(t.value_type, max_items), max_size=min(t.max_length or max_items, max_items)
        )
    if isinstance(t, mi.ListType):
        return st.lists(values(t.item_type, max_items), max_size=min(t.max_length or max_items, max_items))
    raise AssertionError(f"the session generator does not know {t!r}")  # pragma: no cover


def _struct(t: mi.StructType, max_items: int) -> st.SearchStrategy[dict[str, Any]]:
    required = {f.encode_name: values(f.type, max_items) for f in t.fields if f.required}
    optional = {f.encode_name: values(f.type, max_items) for f in t.fields if not f.required}
    pairs = [(earlier, later) for struct, earlier, later in ORDERED_FIELDS if struct is t.cls]
    return st.fixed_dictionaries(required, optional=optional).map(lambda d: _in_order(d, pairs))


def _in_order(obj: dict[str, Any], pairs: list[tuple[str, str]]) -> dict[str, Any]:
    for earlier, later in pairs:
        if earlier in obj and later in obj:
            start = msgspec.convert(obj[earlier], datetime)
            end = msgspec.convert(obj[later], datetime)
            if end < start:
                obj[earlier], obj[later] = obj[later], obj[earlier]
    return obj


@cache
def sessions(max_items: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    """Valid sessions as decoded JSON (dicts), any application ID: register it to send one to a server."""
    return values(mi.type_info(Session), max_items)
