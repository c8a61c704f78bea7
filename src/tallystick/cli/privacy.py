"""``tallystick privacy``, ``delete-user`` and ``rejects``.

Kept light to import: ``tallystick``'s parser is built on every run, so the work
happens in the command functions.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tallystick._terminal import safe
from tallystick.cli.common import (
    EPILOG_COMMON,
    FMT,
    add_data_dir,
    add_storage,
    add_warehouse,
    open_store,
    open_warehouse,
    print_table,
    say,
)


def _storage_and_warehouse(p: argparse.ArgumentParser, *, warehouse: bool = True) -> None:
    add_data_dir(p)
    add_storage(p)
    if warehouse:
        add_warehouse(p)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "privacy",
        help="print what an application collects, as Markdown for a privacy policy",
        formatter_class=FMT,
        description="Print every field a session of APP can hold: the session's own fields, the client's "
        "built-in environment attributes and events, and the data APP declares in the server config.",
        epilog="example:\n  tallystick privacy mytool --config server.toml > PRIVACY.md",
    )
    p.add_argument("app", metavar="APP", help="the application ID")
    p.add_argument("--config", metavar="FILE", help="the server config holding [applications.APP] (TOML)")
    p.set_defaults(func=cmd_privacy)

    p = sub.add_parser(
        "delete-user",
        help="delete every session of one anonymous user ID",
        formatter_class=FMT,
        description="Delete every session of USER_ID from storage and warehouse (loading first, so sessions "
        "not yet loaded are found too) and record a tombstone, so that sessions of this user that started "
        "before now are refused if they are uploaded later. Safe to run again.",
        epilog="example:\n  tallystick delete-user 5a1c2e3f-4b5d-4c6e-8f70-8192a3b4c5d6\n"
        "  tallystick delete-user USER_ID --storage s3://bucket/tallystick --warehouse clickhouse://ch:8123/t\n\n"
        + EPILOG_COMMON,
    )
    p.add_argument(
        "user_id",
        metavar="USER_ID",
        type=str.strip,  # pasted from `query --format csv` (CRLF lines) or a terminal with a trailing space
        help="the user ID (the client shows it)",
    )
    _storage_and_warehouse(p)
    p.set_defaults(func=cmd_delete_user)

    p = sub.add_parser(
        "rejects",
        help="show what ingest rejected, by application, version and rule",
        formatter_class=FMT,
        description="Show the sessions the ingest service answered 400 to, counted by application, version "
        "and rule, the names sessions carried without declaring them (open mode), and the newest of the "
        "sampled rejected bodies (quarantine_samples = false in the server config turns sampling off).",
        epilog="examples:\n  tallystick rejects\n  tallystick rejects --app mytool --samples 3 --bodies\n"
        "  tallystick rejects --clear\n\n" + EPILOG_COMMON,
    )
    _storage_and_warehouse(p, warehouse=False)
    p.add_argument("--app", metavar="APP", help="only this application")
    p.add_argument("--samples", type=int, default=5, metavar="N", help="newest samples to show (default: 5)")
    p.add_argument("--bodies", action="store_true", help="print the sampled bodies too")
    p.add_argument("--clear", action="store_true", help="delete all counts and samples")
    p.set_defaults(func=cmd_rejects)


def cmd_privacy(args: argparse.Namespace) -> int:
    from tallystick.privacy.errors import UnknownApplication
    from tallystick.privacy.gate import read_applications
    from tallystick.privacy.listing import render
    from tallystick.schema import _rules

    if not _rules.is_application_id(args.app):
        raise UnknownApplication(
            f"{args.app!r} is not an application ID: use 1-64 characters of a-z, 0-9, '.', '_' or '-'"
        )
    declaration = None
    if args.config:
        apps, declarations = read_applications(args.config)
        if args.app not in apps:
            raise UnknownApplication(
                f"{args.app} is not registered in {args.config}: add [applications.{args.app}] to it"
            )
        declaration = declarations.get(args.app)
    sys.stdout.write(render(args.app, declaration))
    return 0


def cmd_delete_user(args: argparse.Namespace) -> int:
    from tallystick.privacy.deletion import check_user_id, delete_user

    check_user_id(args.user_id)
    store = open_store(args)
    warehouse = open_warehouse(args)
    try:
        done = delete_user(store, warehouse, args.user_id, report=say)
    finally:
        warehouse.close()
        store.close()
    print(
        f"deleted user {done.user_id}: {done.sessions:,} sessions from the warehouse, {done.objects:,} objects "
        f"from storage, {done.samples:,} rejected samples; sessions of this user that started before "
        f"{done.deleted_at:%Y-%m-%dT%H:%M:%SZ} will be refused"
    )
    return 0


def cmd_rejects(args: argparse.Namespace) -> int:
    import json

    from tallystick.privacy import quarantine

    store = open_store(args)
    try:
        if args.clear:
            print(f"deleted {quarantine.clear(store):,} quarantine objects")
            return 0
        rejections, undeclared = quarantine.read_counts(store)
        samples = quarantine.read_samples(store, args.app, args.samples) if args.samples > 0 else []
    finally:
        store.close()
    rows = [r for r in rejections if args.app in (None, r.application)]
    if not rows and not undeclared:
        print("no rejected sessions and no undeclared names recorded")
    if rows:
        print("rejected sessions:")
        print_table(
            ["application", "version", "rule", "sessions"],
            [(r.application, r.version, r.rule, r.count) for r in rows],
            sys.stdout,
        )
    names = sorted((a, n, c) for (a, n), c in undeclared.items() if args.app in (None, a))
    if names:
        print("\nundeclared names (accepted, open mode):")
        print_table(["application", "name", "sessions"], names, sys.stdout)
    for sample in samples:
        print()
        print(
            safe(
                f"sample {sample['receivedAt']} {sample['applicationId']} {sample['applicationVersion']} "
                f"({sample['bodyBytes']:,} bytes{', truncated' if sample['truncated'] else ''}):"
            )
        )
        for error in sample["validationErrors"]:
            print(safe(f"  {error['key'] or '(body)'}: {error['type']}: {error['message']}"))
        if args.bodies:
            print("  body: " + json.dumps(sample["body"])[1:-1])
    return 0
