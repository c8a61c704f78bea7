"""The interface every warehouse implements, so loader and analyses run on any of them."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tallystick.warehouse.dialect import Dialect, dialect


class WarehouseError(Exception):
    """Base of the warehouse package's errors."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse cannot be opened or reached; the message says what to do."""


class QueryError(WarehouseError):
    """A query failed; the message is the engine's, without a traceback."""


class LoadedObject(NamedTuple):
    """One object the loader has dealt with: ``status`` is ``loaded`` or ``rejected``."""

    key: str
    partition: str
    status: str
    error: str | None = None
    session_id: str | None = None


@dataclass
class Batch:
    """What the loader hands a warehouse in one write.

    ``lines`` holds validated sessions as stored (one JSON object a line), at most
    one per session ID; ``objects`` every object dealt with, including rejected ones
    and duplicates of a session ID in ``lines`` or already in the warehouse.
    """

    lines: bytes = b""
    session_ids: list[str] = field(default_factory=list)
    objects: list[LoadedObject] = field(default_factory=list)


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class Queryable(ABC):
    """The read side, what everything that reads uses (analyses, dashboard, ``tallystick query``).

    ``dialect`` names the engine's SQL flavour; ``sql`` holds the pieces that differ.
    ``open_warehouse(spec, sandbox=Limits(...))`` gives one whose every query runs in the
    SQL sandbox (``sandbox.py``): that is what the dashboard and ``tallystick query`` read.
    """

    dialect: str = "duckdb"

    @property
    def sql(self) -> Dialect:
        """The SQL pieces that differ between engines (see ``tallystick.warehouse.dialect``)."""
        return dialect(self.dialect)

    @abstractmethod
    def query(self, sql: str, parameters: list[Any] | None = None) -> QueryResult:
        """Run one SQL statement; ``?`` placeholders are bound to ``parameters``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


class Warehouse(Queryable):
    """The load side besides the read side: a place sessions are loaded into, deleted from, and queried."""

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the tables and views if they do not exist."""

    def recover(self) -> None:
        """Undo what an interrupted write left behind; the loader calls it before loading."""

    def loading(self, report: Callable[[str], None] | None = None) -> AbstractContextManager[None]:
        """Held by the loader for a whole run (``recover`` and every write): one loader at a time.

        DuckDB's file lock already gives that; a server warehouse that other processes can
        reach at once (ClickHouse) waits here while another process loads, saying so to ``report``.
        """
        return contextlib.nullcontext()

    @abstractmethod
    def loaded_keys(self, partition: str) -> set[str]:
        """Keys of the objects in ``partition`` the loader has already dealt with."""

    @abstractmethod
    def write_batch(self, batch: Batch) -> int:
        """Insert the batch's sessions and record its objects as dealt with; the number of new sessions.

        Sessions whose ID the warehouse already holds are skipped. After a crash at
        any point, ``recover`` and a rewrite of the same objects leave each session
        exactly once.
        """

    @abstractmethod
    def delete_sessions(self, where_sql: str, parameters: list[Any] | None = None) -> None:
        """Delete sessions matching a condition on ``sessions`` columns, with their events and spans."""

    def delete_rows(self, table: str, where_sql: str) -> None:
        """Delete the rows of one table matching a condition (the derived tables' upkeep, ``rollup.py``);
        done when it returns (ClickHouse waits for its mutation)."""
        self.query(f'DELETE FROM "{table}" WHERE {where_sql}')

    @abstractmethod
    def forget_objects(self, keys: Iterable[str]) -> None:
        """Drop the loader's records of these object keys (they were deleted from storage)."""

    def compact(self) -> None:
        """After a deletion: leave no bytes of deleted rows in the engine's files (the load cycle calls it)."""
