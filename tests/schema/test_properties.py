"""Properties of the contract over sessions made by the schema's own generator (``tests/schema/strategies.py``)."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema.strategies import sessions
from tallystick.schema import InvalidSession, Session, parse_session, session_from_tree
from tallystick.schema.fastpath import fast_session

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _raw(value: Any) -> bytes:
    return json.dumps(value).encode()


@SETTINGS
@given(sessions())
def test_generated_sessions_are_accepted(value: dict[str, Any]) -> None:
    """Every generated session parses, and the fast path, when it vouches, gives the same Session."""
    raw = _raw(value)
    parsed = parse_session(raw)
    assert parsed == session_from_tree(json.loads(raw))
    fast = fast_session(raw)
    has_null_field = any(value.get(k, 0) is None for k in ("attributes", "events", "spans", "ingestionTime"))
    assert fast == (None if has_null_field or _nested_null(value) else parsed)


def _nested_null(value: dict[str, Any]) -> bool:
    items = (value.get("events") or []) + (value.get("spans") or [])
    return any("attributes" in item and item["attributes"] is None for item in items)


# --- single-field mutations -------------------------------------------------------------------

_CANDIDATES: tuple[Any, ...] = ([], {}, "x", 12, True, None)


def _unwrap(t: mi.Type) -> mi.Type:
    while isinstance(t, mi.Metadata):
        t = t.type
    return t


def _accepts(t: mi.Type, value: Any) -> bool:
    """Whether ``t`` accepts the JSON kind of ``value`` (not its content)."""
    t = _unwrap(t)
    if isinstance(t, mi.UnionType):
        return any(_accepts(m, value) for m in t.types)
    kinds: dict[type, tuple[type, ...]] = {
        mi.StrType: (str,),
        mi.DateTimeType: (str,),
        mi.IntType: (int,),
        mi.FloatType: (int, float),
        mi.BoolType: (bool,),
        mi.NoneType: (type(None),),
        mi.DictType: (dict,),
        mi.StructType: (dict,),
        mi.ListType: (list,),
    }
    allowed = kinds[type(t)]
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)


def _fields(value: Any, t: mi.Type, path: str, parent: Any, key: Any) -> list[tuple[str, mi.Type, Any, Any]]:
    """(path, type, container, key) of every value present in ``value``, depth first."""
    t = _unwrap(t)
    found = [(path, t, parent, key)] if path else []
    if isinstance(t, mi.UnionType):
        for member in t.types:
            if _accepts(member, value) and value is not None:
                return found + _fields(value, member, path, parent, key)[1 if path else 0 :]
        return found
    if isinstance(t, mi.StructType) and isinstance(value, dict):
        for f in t.fields:
            if f.encode_name in value:
                sub = f"{path}.{f.encode_name}" if path else f.encode_name
                found += _fields(value[f.encode_name], f.type, sub, value, f.encode_name)
    elif isinstance(t, mi.DictType) and isinstance(value, dict):
        for name in value:
            found += _fields(value[name], t.value_type, f"{path}.{name}", value, name)
    elif isinstance(t, mi.ListType) and isinstance(value, list):
        for i, item in enumerate(value):
            found += _fields(item, t.item_type, f"{path}[{i}]", value, i)
    return found


def _mutations(t: mi.Type) -> list[str]:
    t = _unwrap(t)
    kinds = ["type"]
    if isinstance(t, mi.StrType) and t.pattern is not None:
        kinds.append("pattern")
    if isinstance(t, mi.DateTimeType):
        kinds.append("dateTime")
    if isinstance(t, mi.StructType):
        kinds.append("unknownField")
    return kinds


@SETTINGS
@given(sessions(), st.data())
def test_single_field_mutation_is_rejected_at_its_path(value: dict[str, Any], data: st.DataObject) -> None:
    """Breaking one field's rule (kind, pattern, date-time, unknown or missing field) is reported at its path."""
    value = copy.deepcopy(value)
    fields = _fields(value, mi.type_info(Session), "", None, None)
    path, t, parent, key = data.draw(st.sampled_from(fields), label="field")
    kind = data.draw(st.sampled_from([*_mutations(t), "delete"]), label="mutation")
    if kind == "type":
        parent[key] = next(c for c in _CANDIDATES if not _accepts(t, c))
    elif kind == "pattern":
        parent[key] = parent[key] + "\n"  # Python's $ would let this through; the rules must not
    elif kind == "dateTime":
        parent[key] = "yesterday"
    elif kind == "unknownField":
        parent[key]["zzUnknown"] = 1
        path = f"{path}.zzUnknown"
    else:
        parent_type = _parent_type(fields, parent)
        required = isinstance(parent_type, mi.StructType) and any(
            f.encode_name == key and f.required for f in parent_type.fields
        )
        if not required:
            return  # removing an optional field, an attribute or a list item breaks nothing
        del parent[key]
    raw = _raw(value)
    with pytest.raises(InvalidSession) as info:
        parse_session(raw)
    assert path in {e.key for e in info.value.errors}, (kind, path, info.value.errors)
    assert fast_session(raw) is None


def _parent_type(fields: list[tuple[str, mi.Type, Any, Any]], parent: Any) -> mi.Type:
    for _, t, container, key in fields:
        if container is not None and container[key] is parent:
            return t
    return _unwrap(mi.type_info(Session))


@SETTINGS
@given(sessions(), st.sampled_from(["sessionId", "userId", "applicationId", "sessionStartTime"]))
def test_duplicate_key_is_rejected_by_both_paths(value: dict[str, Any], key: str) -> None:
    """A required key sent twice (same value) is a duplicateKey error, and the fast path does not vouch."""
    raw = _raw(value)
    raw = raw[:-1] + b", " + json.dumps(key).encode() + b": " + json.dumps(value[key]).encode() + b"}"
    assert fast_session(raw) is None
    with pytest.raises(InvalidSession) as info:
        parse_session(raw)
    assert (key, "duplicateKey") in {(e.key, e.type) for e in info.value.errors}


@SETTINGS
@given(sessions())
def test_stored_form_round_trips(value: dict[str, Any]) -> None:
    """What the server stores (msgspec's encoding of the Session) parses back to the same Session."""
    parsed = parse_session(_raw(value))
    assert parse_session(msgspec.json.encode(parsed)) == parsed
