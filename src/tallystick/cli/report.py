"""``tallystick report``: the built-in analyses on the command line.

Kept light to import: ``tallystick``'s parser is built on every run (only the
registry, which imports no analysis, is loaded here).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tallystick.analysis.registry import ANALYSES
from tallystick.cli.common import add_data_dir, add_warehouse, runnable, say, warehouse_spec


def _date(text: str) -> date:
    """``YYYY-MM-DD``, or ``Nd`` for N days before today (UTC)."""
    if text.endswith("d") and text[:-1].isdigit():
        return datetime.now(UTC).date() - timedelta(days=int(text[:-1]))
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD or e.g. 30d") from None


def _epilog() -> str:
    lines = ["analyses:"]
    lines += [f"  {a.name:<15} {a.question}" for a in ANALYSES]
    lines += [
        "",
        "examples:",
        "  tallystick report adoption --app demo",
        "  tallystick report breakdown --app demo --attribute shell --every week --chart shells.png",
        "  tallystick report feature-impact --app demo --feature tabCompletion --outcome UnknownCommand",
        "  tallystick report common-factor --app demo --event ContainerStartFailed --since 2025-03-01",
        "  tallystick report spans --app demo --span BuildImage --attribute buildKit --format json",
    ]
    return "\n".join(lines)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="run a built-in analysis",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Run a built-in analysis of the warehouse (read-only); its answer in words comes first. Without a "
            "name, run every analysis with parameters chosen from the data and print each one's answer."
        ),
        epilog=_epilog(),
    )
    p.add_argument("name", nargs="?", help="the analysis (see below)")
    add_data_dir(p, "where sessions and the warehouse live")
    add_warehouse(p, "warehouse (default: <data-dir>/warehouse.duckdb)")
    scope = p.add_argument_group("scope")
    scope.add_argument("--app", help="application ID (default: the only one in the warehouse)")
    scope.add_argument("--since", type=_date, metavar="DATE", help="first day, YYYY-MM-DD or e.g. 90d (default: all)")
    scope.add_argument("--until", type=_date, metavar="DATE", help="last day, inclusive (default: the latest)")
    scope.add_argument(
        "--version", dest="versions", action="append", metavar="V", help="only this version (repeatable)"
    )
    scope.add_argument("--where", action="append", metavar="ATTR=VALUE", help="only sessions with it (repeatable)")
    params = p.add_argument_group("analysis parameters")
    seen: set[str] = set()
    for analysis in ANALYSES:
        for param in analysis.params:
            if param.name in seen:
                continue
            seen.add(param.name)
            flag = "--" + param.name.replace("_", "-")
            kinds: dict[str, Any] = {"int": int, "float": float}
            if param.kind == "list":
                params.add_argument(flag, dest=param.name, action="append", help=param.help)
            else:
                params.add_argument(flag, dest=param.name, type=kinds.get(param.kind, str), help=param.help)
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    out.add_argument("--table", metavar="NAME", help="with --format csv: which table (default: the first)")
    out.add_argument("--all-rows", action="store_true", help="show every row in the terminal")
    out.add_argument("--chart", metavar="FILE", help="also write the chart: .png, .svg or .html")
    p.set_defaults(func=cmd_report)


def _scope(args: argparse.Namespace, warehouse: Any) -> Any:
    from tallystick.analysis import Filter, Scope

    return Scope(
        args.app or _only_app(warehouse),
        args.since,
        args.until,
        tuple(args.versions or ()),
        tuple(Filter.parse(w) for w in args.where or ()),
    )


def cmd_overview(args: argparse.Namespace) -> int:
    """Every analysis's headline on one screen, with parameters chosen from the data (``analysis.defaults``).

    ``--format json``: the same as one JSON document. CSV, ``--table`` and ``--chart`` belong to one
    analysis's tables: refused here with a line saying so, rather than ignored.
    """
    import json
    import shutil
    import textwrap
    from pathlib import Path

    from tallystick._terminal import safe
    from tallystick.analysis import AnalysisError, bind
    from tallystick.analysis.defaults import parameters
    from tallystick.warehouse import open_warehouse

    refusal = _overview_refusal(args)
    if refusal:
        say(refusal, args)
        return 2
    as_json = args.format == "json"
    spec = warehouse_spec(args)
    if not args.warehouse and not Path(spec).exists():
        print(runnable(f"No warehouse at {spec} yet (start with `tallystick up --demo`). The analyses:\n", args))
        for a in ANALYSES:
            print(f"  {a.name:<15} {a.question}")
        return 0
    width = min(100, shutil.get_terminal_size((100, 24)).columns)
    try:
        warehouse = open_warehouse(spec, read_only=True)
    except AnalysisError as exc:
        say(f"tallystick: error: {exc}", args)
        return 1
    try:
        scope = _scope(args, warehouse)
        chosen = parameters(bind(warehouse, scope))
        describe = scope.describe()
        answers: list[dict[str, Any]] = []
        if not as_json:
            print(safe(f"{scope.app}: {describe['since'] or 'all data'} to {describe['until'] or 'the latest'}") + "\n")
        # Ten analyses take seconds on a large warehouse: on a terminal, a line on stderr says which one
        # runs (overwritten, then cleared before its answer is printed).
        busy = sys.stderr.isatty()
        for i, a in enumerate(ANALYSES, 1):
            params = chosen.get(a.name)
            given = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in (params or {}).items())
            if params is None:
                text = runnable(f"Nothing in the data to run it on; see `tallystick report {a.name} --help`.", args)
            else:
                text = _headline(warehouse, scope, a.name, params, f"[{i}/{len(ANALYSES)}]" if busy else "")
            if as_json:
                answers.append({"name": a.name, "title": a.title, "parameters": params, "headline": text})
                continue
            print(safe(f"{a.title}{f' ({given})' if given else ''}"))  # parameters may be session text
            for line in textwrap.wrap(text, width - 2):
                print("  " + safe(line))
            print()
        if as_json:
            print(json.dumps({"app": scope.app, **describe, "answers": answers}, indent=2, default=str))
            return 0
        print(runnable("Details: `tallystick report NAME` (see --help); JSON with --format json.", args))
    except AnalysisError as exc:
        say(f"tallystick: error: {exc}", args)
        return 1
    finally:
        warehouse.close()
    return 0


def _overview_refusal(args: argparse.Namespace) -> str:
    """The line refusing what only one analysis can do (CSV, ``--table``, ``--chart``), or ``""``."""
    wanted = [
        flag
        for flag, given in (("--format csv", args.format == "csv"), ("--table", args.table), ("--chart", args.chart))
        if given
    ]
    if not wanted:
        return ""
    return (
        f"tallystick: error: {' and '.join(wanted)} need{'s' if len(wanted) == 1 else ''} an analysis NAME: "
        f"`tallystick report NAME "
        f"{wanted[0]} ...`; every answer at once is text, or --format json"
    )


def _headline(warehouse: Any, scope: Any, name: str, params: dict[str, Any], progress: str) -> str:
    """One analysis's headline; ``progress`` (``[3/10]``) is said on stderr meanwhile, then cleared."""
    from tallystick.analysis import AnalysisError, run

    if progress:
        sys.stdout.flush()
        sys.stderr.write(f"\r\033[K{progress} {name} ...")
        sys.stderr.flush()
    try:
        return str(run(warehouse, name, scope, **params).headline)
    except AnalysisError as exc:
        return f"No answer: {exc}"
    finally:
        if progress:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def cmd_report(args: argparse.Namespace) -> int:
    if not args.name:
        return cmd_overview(args)
    from tallystick.analysis import AnalysisError, Filter, Scope, get, run
    from tallystick.analysis.render import write_chart, write_csv, write_json, write_text
    from tallystick.warehouse import open_warehouse

    try:
        analysis = get(args.name)
        warehouse = open_warehouse(warehouse_spec(args), read_only=True)
        try:
            app = args.app or _only_app(warehouse)
            scope = Scope(
                app,
                args.since,
                args.until,
                tuple(args.versions or ()),
                tuple(Filter.parse(w) for w in args.where or ()),
            )
            params = {p.name: getattr(args, p.name) for p in analysis.params if getattr(args, p.name) is not None}
            given = {
                p.name
                for a in ANALYSES
                for p in a.params
                if getattr(args, p.name, None) is not None and p.name not in {q.name for q in analysis.params}
            }
            if given:
                flags = ", ".join("--" + g.replace("_", "-") for g in sorted(given))
                raise AnalysisError(f"{analysis.name} does not take {flags}; see `tallystick report --help`")
            report = run(warehouse, analysis.name, scope, **params)
        finally:
            warehouse.close()
        if args.format == "json":
            write_json(report, sys.stdout)
        elif args.format == "csv":
            write_csv(report, sys.stdout, args.table)
        else:
            write_text(report, sys.stdout, all_rows=args.all_rows)
        if args.chart:
            path = write_chart(report, args.chart)
            print(f"chart written to {path}", file=sys.stderr)
    except (AnalysisError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        say(f"tallystick: error: {message}", args)
        return 1
    return 0


def _only_app(warehouse: Any) -> str:
    from tallystick.analysis.errors import BadParameter

    apps = [r[0] for r in warehouse.query('SELECT DISTINCT "applicationId" FROM sessions LIMIT 20').rows]
    if len(apps) == 1:
        return str(apps[0])
    if not apps:
        raise BadParameter(
            "no sessions in the warehouse yet: load some with `tallystick load` (or keep `tallystick up` running)"
        )
    raise BadParameter(f"name the application with --app; the warehouse has: {', '.join(sorted(apps))}")
