"""``tallystick import``: copy the sessions of an Abacus bucket, or of another Tallystick store (moving an
install from a directory to a bucket), into Tallystick's storage."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tallystick._terminal import safe
from tallystick.cli.common import (
    EPILOG_COMMON,
    FMT,
    CliError,
    add_data_dir,
    add_storage,
    data_dir,
    open_store,
    runnable,
)

READERS = 8  # as storage.abacus.READERS (not imported here: the parser is built on every run)
MAX_READERS = 64


def _progress(stream: Any) -> Any:
    interactive = stream.isatty()

    def show(stats: Any) -> None:
        line = f"read {stats.done:,} objects: {stats.imported:,} imported, {stats.already:,} already there, "
        line += f"{sum(stats.skipped.values()):,} skipped"
        if interactive:
            stream.write("\r\033[K" + line)
        else:
            stream.write(line + "\n")
        stream.flush()

    return show


def _require_local_source(url: str) -> None:
    """A directory SOURCE that is not there is a typo, not an empty bucket (which reads nothing)."""
    if "://" in url and not url.startswith("file://"):
        return
    from tallystick.storage.local import path_from_url

    path = path_from_url(url)
    if not path.is_dir():
        raise CliError(f"no directory at {path}: give the Abacus bucket's copy, or its s3://, gs:// or az:// URL")


def _nothing_found(source: Any, url: str) -> CliError:
    """What to say when SOURCE holds neither layout: most often a Tallystick data directory given
    instead of its ``sessions`` directory."""
    from tallystick.storage import open_store as open_url
    from tallystick.storage.copy import is_tallystick_store

    if "://" not in url or url.startswith("file://"):
        inner = url.rstrip("/") + "/sessions"
        if "sessions" in source.list_dirs(""):
            inner_store = open_url(inner)
            try:
                if is_tallystick_store(inner_store):
                    return CliError(
                        f"{url} looks like a Tallystick data directory: give its sessions directory, {inner}"
                    )
            finally:
                inner_store.close()
    return CliError(
        f"nothing to import from {url}: it holds neither an Abacus bucket's sessions (v1/<app>/<version>/"
        "<sessionId>.json) nor a Tallystick store's (sessions/v1/app=<app>/date=<day>/<sessionId>.json.gz)"
    )


def _deleted_users(dest: Any) -> Any:
    """Whether a session is one ingest would refuse as a deleted user's, by ``dest``'s tombstones."""
    from tallystick.privacy.tombstones import Tombstones
    from tallystick.schema._rules import ERASURE_COMMITMENT_ATTRIBUTE

    tombstones = Tombstones(dest)
    tombstones.refresh()

    def refused(session: Any) -> bool:
        commitment = (session.attributes or {}).get(ERASURE_COMMITMENT_ATTRIBUTE)
        return tombstones.refuses(session.user_id, session.session_start_time, commitment) is not None

    return refused


def cmd_import(args: argparse.Namespace) -> int:
    from tallystick.storage import open_store as open_url
    from tallystick.storage.abacus import ABACUS_PREFIX, Checkpoint, checkpoint_name, import_abacus

    if args.max_attribute_chars is not None and args.max_attribute_chars < 1:
        raise CliError("--max-attribute-chars must be at least 1")
    if not 1 <= args.readers <= MAX_READERS:
        raise CliError(f"--readers must be between 1 and {MAX_READERS}")
    _require_local_source(args.source)
    source = open_url(args.source)
    dest = open_store(args)
    if source.url == dest.url:
        raise CliError("the source and --storage are the same store: import into Tallystick's own storage")
    from tallystick.storage.copy import copy_store, is_tallystick_store

    tallystick_source = is_tallystick_store(source)
    if not tallystick_source and next(iter(source.list(ABACUS_PREFIX)), None) is None:
        error = _nothing_found(source, args.source)
        source.close()
        dest.close()
        raise error
    kind = "store" if tallystick_source else "abacus"
    checkpoint = Checkpoint(data_dir(args) / "imports" / checkpoint_name(source.url, kind), source.url)
    options = {} if args.max_attribute_chars is None else {"max_value_chars": args.max_attribute_chars}
    progress = None if args.quiet else _progress(sys.stderr)
    common: dict[str, Any] = {
        "checkpoint": checkpoint,
        "restart": args.restart,
        "progress": progress,
        "readers": args.readers,
        "refused": _deleted_users(dest),  # a deletion is not undone by importing again
    }
    try:
        if tallystick_source:
            stats = copy_store(source, dest, **common)
        else:
            stats = import_abacus(source, dest, **common, **options)
    finally:
        source.close()
        dest.close()
    if progress is not None and sys.stderr.isatty():
        sys.stderr.write("\n")
    try:
        if stats.resumed_after:
            print(f"resumed after {stats.resumed_after} (--restart reads the bucket from the start)")
        print(stats.summary())
        for reason, keys in stats.examples.items():
            print(safe(f"  {reason}: e.g. {', '.join(keys)}"))  # keys and reasons come from the bucket
        if stats.imported:
            print(
                runnable(
                    "run `tallystick load` (or keep `tallystick up` running) to load them into the warehouse", args
                )
            )
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: stop quietly
        sys.stdout = None  # the interpreter's flush at exit would fail again
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="copy the sessions of an Abacus bucket, or of another Tallystick store, into Tallystick's storage",
        formatter_class=FMT,
        description="Read every session an Abacus server stored (v1/<app>/<version>/<sessionId>.json) and store "
        "it in Tallystick's storage, validated as ingest would and kept as Abacus wrote it (ingestionTime "
        "included). Safe to interrupt and re-run: it resumes after the last key done, and a session already "
        "stored is never written twice. Objects that are not valid sessions are skipped and counted by reason. "
        "SOURCE may also be a store Tallystick wrote (its sessions directory, or a bucket): to move an install "
        "from a directory to a bucket, every session and privacy record (tombstones, erasure requests) is "
        "copied as it is, after the directory's write-ahead log is settled; then load the new store into "
        "the new warehouse.",
        epilog="example:\n"
        "  tallystick import s3://old-abacus-bucket\n"
        "  tallystick import gs://abacus-sessions --storage s3://tallystick-sessions\n"
        "  tallystick import file:///backups/abacus --restart   # read everything again\n"
        "  tallystick import ~/.local/share/tallystick/sessions --storage s3://acme-telemetry/sessions\n"
        "                                     # move an install's sessions to a bucket (docs/scale-out.md)\n\n"
        "SOURCE takes the same URLs as --storage (credentials from the usual environment).\n" + EPILOG_COMMON,
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="the Abacus bucket, or a Tallystick store: s3://, gs://, az://, file:// or a directory",
    )
    add_data_dir(p, help="where Tallystick's sessions live and the import's checkpoint is kept (see below)")
    add_storage(p)
    p.add_argument("--restart", action="store_true", help="ignore the checkpoint and read the whole bucket again")
    p.add_argument(
        "--max-attribute-chars",
        type=int,
        metavar="N",
        help="longest string attribute value accepted (default: the server's default, 262144)",
    )
    p.add_argument(
        "--readers",
        type=int,
        default=READERS,
        metavar="N",
        help=f"objects read and stored at once (default: {READERS}; 1: one after the other)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_import)
