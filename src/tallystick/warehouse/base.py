"""The interface every warehouse implements, so loader and analyses run on any of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from tallystick.warehouse.sql import Dialect, dialect


class WarehouseError(Exception):
    """Base of the warehouse package's errors."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse cannot be opened or reached; the message says what to do."""


class QueryError(WarehouseError):
    """A query failed; the message is the engine's, without a traceback."""


@dataclass(frozen=True)
class LoadedObject:
    """One object the loader has dealt with: ``status`` is ``loaded`` or ``rejected``."""

    key: str
    partition: str
    status: str
    error: str | None = None


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class Warehouse(ABC):
    """A place sessions are loaded into and queried; ``dialect`` names its SQL flavour."""

    dialect: str = "duckdb"

    @property
    def sql(self) -> Dialect:
        """The SQL pieces that differ between engines (see ``tallystick.warehouse.sql``)."""
        return dialect(self.dialect)

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the tables and views if they do not exist."""

    @abstractmethod
    def loaded_keys(self, partition: str) -> set[str]:
        """Keys of the objects in ``partition`` the loader has already dealt with."""

    @abstractmethod
    def write_batch(self, rows: dict[str, list[dict[str, Any]]], objects: list[LoadedObject]) -> int:
        """Insert rows and record objects as dealt with, atomically; the number of new sessions."""

    @abstractmethod
    def query(self, sql: str, parameters: list[Any] | None = None) -> QueryResult:
        """Run one SQL statement."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""
