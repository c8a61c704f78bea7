"""What each application declares it sends, parsed from the server's TOML config.

In the server config, an application is either listed (``applications = ["mytool"]``:
registered, nothing declared) or given a table that registers and declares it::

    [applications.mytool]
    mode = "strict"                    # or "open" (the default): accept, but report undeclared names

    [[applications.mytool.attributes]]
    name = "projectSize"
    type = "number"                    # string, number or boolean; null is always allowed
    description = "Number of files in the project."
    why = "To see whether large projects are slow."

    [[applications.mytool.events]]
    name = "UpdateNudgeShown"
    description = "The tool told the user a newer version exists."
    why = "To see whether users update when told to."

    [[applications.mytool.events.attributes]]
    name = "latestVersion"
    type = "string"
    description = "The newer version offered."

Spans are declared like events (``[[applications.mytool.spans]]``). The client's
built-in attributes and events (``tallystick.privacy.catalog``) need no declaration;
``tallystick.privacy.conformance`` checks a session against its declaration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tallystick.privacy.errors import DeclarationError
from tallystick.schema import _rules

TYPES = ("string", "number", "boolean")
MODES = ("open", "strict")
_ITEM_KEYS = frozenset({"name", "type", "description", "why", "attributes"})


@dataclass(frozen=True)
class Item:
    """One declared name: an attribute (``type`` string/number/boolean), an event or a span (``type`` event/span)."""

    name: str
    type: str
    description: str
    why: str
    attributes: tuple[Item, ...] = ()

    def attribute(self, name: str) -> Item | None:
        for item in self.attributes:
            if item.name == name:
                return item
        return None


@dataclass(frozen=True)
class Declaration:
    """What one application may send: session attributes, events and spans (each with their attributes)."""

    application: str
    mode: str = "open"
    attributes: tuple[Item, ...] = ()
    events: tuple[Item, ...] = ()
    spans: tuple[Item, ...] = ()

    @property
    def strict(self) -> bool:
        return self.mode == "strict"


def parse_applications(value: Any, source: str) -> tuple[set[str], dict[str, Declaration]]:
    """Registered application IDs and their declarations from a config's ``applications`` value."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return set(value), {}
    if not isinstance(value, Mapping):
        raise DeclarationError(
            f"applications in {source} must be a list of application IDs or a table per application "
            "([applications.mytool])"
        )
    declarations = {}
    for app, table in value.items():
        if not _rules.is_application_id(app):
            raise DeclarationError(
                f"invalid application ID {app!r} in {source}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        declarations[app] = parse_declaration(app, table, source)
    return set(declarations), declarations


def parse_declaration(app: str, table: Any, source: str) -> Declaration:
    where = f"[applications.{app}] in {source}"
    if not isinstance(table, Mapping):
        raise DeclarationError(f"{where} must be a table")
    extra = sorted(set(table) - {"mode", "attributes", "events", "spans"})
    if extra:
        raise DeclarationError(f"unknown key {extra[0]!r} in {where}: use mode, attributes, events or spans")
    mode = table.get("mode", "open")
    if mode not in MODES:
        raise DeclarationError(f'mode {mode!r} in {where} is not a mode: use "strict" or "open"')
    return Declaration(
        app,
        mode,
        _items(table.get("attributes", []), f"applications.{app}.attributes", source, kind=None),
        _items(table.get("events", []), f"applications.{app}.events", source, kind="event"),
        _items(table.get("spans", []), f"applications.{app}.spans", source, kind="span"),
    )


def _items(value: Any, path: str, source: str, *, kind: str | None, nested: bool = False) -> tuple[Item, ...]:
    if not isinstance(value, list):
        raise DeclarationError(f"{path} in {source} must be an array of tables ([[{path}]])")
    items: list[Item] = []
    seen: set[str] = set()
    for i, entry in enumerate(value):
        where = f"{path}[{i}] in {source}"
        if not isinstance(entry, Mapping):
            raise DeclarationError(f"{where} must be a table with name, description and why")
        extra = sorted(set(entry) - _ITEM_KEYS)
        if extra:
            raise DeclarationError(f"unknown key {extra[0]!r} in {where}: use name, type, description, why")
        name = entry.get("name")
        valid = _rules.is_attribute_name(name) if kind is None else _rules.is_type_name(name)
        if not isinstance(name, str) or not valid:
            pattern = _rules.ATTRIBUTE_NAME_PATTERN if kind is None else _rules.TYPE_NAME_PATTERN
            rule = _rules.PATTERN_DESCRIPTIONS[pattern]
            raise DeclarationError(f"{where} needs a name of {rule}, not {name!r}")
        if name in seen:
            raise DeclarationError(f"{name!r} is declared twice in {path} in {source}: keep one")
        seen.add(name)
        for key in ("description",) if nested else ("description", "why"):
            text = entry.get(key)
            if not isinstance(text, str) or not text.strip():
                what = "what the value is" if key == "description" else "why it is collected"
                raise DeclarationError(f"{name} ({where}) needs a {key}: say {what}")
        if kind is None:
            declared_type = entry.get("type")
            if declared_type not in TYPES:
                raise DeclarationError(
                    f"{name} ({where}) needs a type: string, number or boolean, not {declared_type!r}"
                )
            if "attributes" in entry:
                raise DeclarationError(f"{name} ({where}) is an attribute: attributes cannot have attributes")
            attributes: tuple[Item, ...] = ()
        else:
            if "type" in entry:
                raise DeclarationError(f"{name} ({where}) is a {kind}: its name is its type, remove type")
            attributes = _items(entry.get("attributes", []), f"{path}.attributes", source, kind=None, nested=True)
        items.append(
            Item(
                name, kind or entry["type"], entry["description"].strip(), str(entry.get("why", "")).strip(), attributes
            )
        )
    return tuple(items)


def type_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"
