"""The check of a session against its application's declaration and the client's built-ins."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tallystick.privacy import catalog
from tallystick.privacy.declarations import Declaration, Item, type_of


@dataclass
class Findings:
    """A session's names outside its application's declaration: ``errors`` in strict mode, else ``undeclared``."""

    errors: list[Any] = field(default_factory=list)  # schema ValidationErrors
    undeclared: list[str] = field(default_factory=list)  # "attributes.x", "events.Foo", "events.Foo.attributes.y"


def check(declaration: Declaration, session: Any) -> Findings:
    """Every name in ``session`` (a validated ``Session``) that ``declaration`` does not allow.

    Strict mode turns them into validation errors (rule ``undeclared``, or
    ``declaredType`` for a value of another type); open mode only lists them.
    """
    findings = Findings()
    strict = declaration.strict

    def report(path: str, name: str, value: Any, message: str, rule: str = "undeclared") -> None:
        if strict:
            from tallystick.schema import ValidationError

            findings.errors.append(ValidationError(path, rule, value, message))
        elif rule == "undeclared":
            findings.undeclared.append(name)

    def attributes(
        attrs: Mapping[str, Any] | None,
        allowed: tuple[Item, ...],
        path: str,
        name: str,
        builtin: Callable[[str], bool] | None,
    ) -> None:
        declared = {item.name: item for item in allowed}
        for key, value in (attrs or {}).items():
            item = declared.get(key)
            if item is None:
                if builtin is not None and builtin(key):
                    continue
                report(
                    f"{path}attributes.{key}",
                    f"{name}attributes.{key}",
                    key,
                    f"{path}attributes.{key} is not declared for {declaration.application}: declare it in the "
                    "server config or remove it from the client",
                )
                continue
            actual = type_of(value)
            if actual is not None and actual != item.type:
                report(
                    f"{path}attributes.{key}",
                    "",
                    value,
                    f"{path}attributes.{key} is declared as a {item.type}, not a {actual}",
                    "declaredType",
                )

    attributes(session.attributes, declaration.attributes, "", "", catalog.builtin_attribute)
    for kind, entries, declared_items in (
        ("events", session.events, declaration.events),
        ("spans", session.spans, declaration.spans),
    ):
        declared = {item.name: item for item in declared_items}
        for i, entry in enumerate(entries or ()):
            item = declared.get(entry.type) or (catalog.builtin_event(entry.type) if kind == "events" else None)
            if item is None:
                report(
                    f"{kind}[{i}].type",
                    f"{kind}.{entry.type}",
                    entry.type,
                    f"{kind[:-1]} {entry.type} ({kind}[{i}].type) is not declared for {declaration.application}: "
                    "declare it in the server config or stop sending it",
                )
                continue
            builtin = catalog.builtin_span_attribute if kind == "spans" else None  # the client's `failed`
            attributes(entry.attributes, item.attributes, f"{kind}[{i}].", f"{kind}.{entry.type}.", builtin)
    return findings
