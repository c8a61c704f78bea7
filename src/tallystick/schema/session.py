"""Wire contract v1 as msgspec Structs: the single source of truth for a session.

The JSON Schema (``session.schema.json``), the validator's rules and the
warehouse tables are derived from these classes. Field names on the wire are
camelCase (Abacus-compatible); ``rename="camel"`` maps them to snake_case here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from tallystick.schema import _rules

Uuid4 = Annotated[
    str,
    msgspec.Meta(pattern=_rules.UUID4_PATTERN, description="A version-4 UUID in canonical lower-case form."),
]
Timestamp = Annotated[
    datetime,
    msgspec.Meta(tz=True, description="An RFC 3339 date-time with an offset."),
]
TypeName = Annotated[
    str,
    msgspec.Meta(pattern=_rules.TYPE_NAME_PATTERN, max_length=_rules.TYPE_NAME_MAX_LENGTH),
]
AttributeName = Annotated[
    str,
    msgspec.Meta(pattern=_rules.ATTRIBUTE_NAME_PATTERN, max_length=_rules.NAME_MAX_LENGTH),
]
# A string value's length limit is the server's setting (``max_attribute_chars``), so the Struct
# does not fix it: the schema documents the default, and ``validate``/``fastpath`` apply the setting.
AttributeValue = (
    Annotated[
        str,
        msgspec.Meta(
            extra_json_schema={"maxLength": _rules.ATTRIBUTE_VALUE_MAX_LENGTH},
            description="At most maxLength code points by default; the server's max_attribute_chars setting decides.",
        ),
    ]
    | Annotated[int, msgspec.Meta(ge=_rules.INT_MIN, le=_rules.INT_MAX)]
    | float
    | bool
    | None
)
Attributes = Annotated[
    dict[AttributeName, AttributeValue],
    msgspec.Meta(max_length=_rules.MAX_ATTRIBUTES),
]


class Event(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Something that happened during a session, such as ``UpdateNudgeShown``."""

    type: TypeName
    time: Timestamp
    attributes: Attributes | None = None


class Span(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """How long one operation took, such as ``LoadConfig``."""

    type: TypeName
    start_time: Timestamp
    end_time: Timestamp
    attributes: Attributes | None = None


class Session(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """One run of an instrumented tool."""

    session_id: Uuid4
    user_id: Uuid4
    session_start_time: Timestamp
    session_end_time: Timestamp
    application_id: Annotated[
        str,
        msgspec.Meta(pattern=_rules.APPLICATION_ID_PATTERN, max_length=_rules.APPLICATION_ID_MAX_LENGTH),
    ]
    application_version: Annotated[
        str,
        msgspec.Meta(pattern=_rules.VERSION_PATTERN, max_length=_rules.VERSION_MAX_LENGTH),
    ]
    ingestion_time: Timestamp | None = None
    attributes: Attributes | None = None
    events: Annotated[list[Event], msgspec.Meta(max_length=_rules.MAX_EVENTS)] | None = None
    spans: Annotated[list[Span], msgspec.Meta(max_length=_rules.MAX_SPANS)] | None = None


# Rules that relate two fields of one object: (struct, earlier field, later field),
# wire names. JSON Schema cannot say these; the validator checks them.
ORDERED_FIELDS: tuple[tuple[type[msgspec.Struct], str, str], ...] = (
    (Session, "sessionStartTime", "sessionEndTime"),
    (Span, "startTime", "endTime"),
)


class SessionBatch(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /v1/batches``: sessions are validated one by one."""

    sessions: Annotated[list[object], msgspec.Meta(max_length=_rules.MAX_BATCH_SESSIONS)]
