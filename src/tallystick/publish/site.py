"""Write the site: ``index.html`` (headlines, charts, what is collected), and per chart its data as JSON and CSV.

The steps: bind the scope once (``analysis.bind``), build each chart's protected section
(``sections``), draw it (``svg``), then write the files. Files of an earlier run that this
run did not write are removed from ``data/``, so a chart taken out of the config takes
its numbers with it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from tallystick import __version__
from tallystick._csv import safe_row
from tallystick._csv import writer as csv_writer
from tallystick.analysis import Scope, UnknownAttribute, UnknownType, bind
from tallystick.analysis.scope import Bound
from tallystick.privacy.listing import render as privacy_listing
from tallystick.publish import counts, markdown, svg
from tallystick.publish.cells import protect
from tallystick.publish.config import PublishConfig
from tallystick.publish.errors import BadConfig, PublishError
from tallystick.publish.sections import Section, build
from tallystick.warehouse.base import Warehouse

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass
class Written:
    """What a publish run wrote: the files (relative to the site's directory) and their total size."""

    out: Path
    files: list[str] = field(default_factory=list)
    sections: int = 0
    withheld: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum((self.out / f).stat().st_size for f in self.files)


def _only_app(warehouse: Warehouse) -> str:
    apps = [r[0] for r in warehouse.query('SELECT DISTINCT "applicationId" FROM sessions LIMIT 20').rows]
    if len(apps) == 1:
        return str(apps[0])
    if not apps:
        raise BadConfig(
            "no sessions in the warehouse yet: load some with `tallystick load` (or keep `tallystick up` running)"
        )
    raise BadConfig(f"set app = ... in the publish config; the warehouse has: {', '.join(sorted(apps))}")


def _declaration(config: PublishConfig, app: str) -> Any:
    if config.server_config is None:
        return None
    from tallystick.privacy.gate import read_applications

    apps, declarations = read_applications(str(config.server_config))
    if app not in apps:
        raise BadConfig(f"{app} is not registered in {config.server_config}: add [applications.{app}] to it")
    return declarations.get(app)


def _words(text: str, app: str, k: int) -> str:
    return text.replace("{app}", app).replace("{k}", str(k))


def _csv(section: Section) -> str:
    buf = io.StringIO()
    writer = csv_writer(buf)
    writer.writerow(section.columns())
    for row in section.rows():
        writer.writerow(safe_row("" if v is None else v for v in row))
    return buf.getvalue()


def _bound(warehouse: Warehouse, config: PublishConfig, app: str) -> Bound:
    """The scope checked against the warehouse. The default period starts on the first of the month of the
    first session, not on its day: the first session's date is one user's, and a date is a number too."""
    b = bind(warehouse, Scope(app, config.since, config.until))
    if config.since is None:
        b = bind(warehouse, Scope(app, b.since.replace(day=1), config.until))
    return b


def _write(out: Path, files: dict[str, str]) -> None:
    """Write ``files`` (name relative to ``out``: text) and remove data files of an earlier run not among them."""
    try:
        (out / "data").mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
        for old in (out / "data").iterdir():
            if f"data/{old.name}" not in files and old.suffix in (".json", ".csv") and old.is_file():
                old.unlink()
    except OSError as exc:
        raise PublishError(f"cannot write the site into {out}: {exc.strerror or exc}") from None


def publish(
    warehouse: Warehouse,
    config: PublishConfig,
    out: str | Path,
    *,
    now: datetime | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Written:
    """Write the site ``config`` describes into ``out``; raises PublishError or AnalysisError saying what to fix."""
    out = Path(out)
    try:  # before any work: a directory that cannot be written is found out at once
        (out / "data").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot write the site into {out}: {exc.strerror or exc}") from None
    policy = config.policy
    app = config.app or _only_app(warehouse)
    b = _bound(warehouse, config, app)
    k = policy.k
    total = protect({}, counts.users(b), policy).total
    declaration = _declaration(config, app)
    sections: list[dict[str, Any]] = []
    written = Written(out)
    for i, chart in enumerate(config.charts, 1):
        progress(f"chart {i} of {len(config.charts)}: {chart.title} ({chart.analysis})")
        try:
            section = build(b, chart, policy)
        except (UnknownAttribute, UnknownType) as exc:
            if not chart.optional:
                raise
            progress(f"left out {chart.slug} (optional): {str(exc).split(':')[0]}")
            written.skipped.append(chart.slug)
            continue
        title = _words(chart.title, app, k)
        if section.kind == "lines":
            picture = svg.lines(section.periods, section.series(), k=k, title=title)
        else:
            picture = svg.bars(section.cells, k=k, title=title)
        if section.empty:
            written.withheld.append(chart.slug)
        sections.append(
            {
                "slug": section.config.slug,
                "title": title,
                "text": _words(section.config.text, app, k),
                "svg": Markup(picture) if not section.empty else None,  # noqa: S704 - svg.py escapes every text
                "rows": section.rows(),
                "columns": section.columns(),
                "section": section,
            }
        )
    if not sections:
        raise PublishError(
            f"nothing to publish: no session of {app} has what the charts ask for ({', '.join(written.skipped)}); "
            "name attributes the data has (`tallystick report breakdown --help`)"
        )
    headlines = []
    if config.headlines:
        if total is not None:
            headlines.append(f"About {total:,} users ran {app} between {b.since} and {b.until}.")
        headlines += [_words(s["section"].headline, app, k) for s in sections if s["section"].headline]
    data_date = b.until.isoformat()  # the last day counted (not the latest upload's time: one user's)
    page = _env.get_template("index.html").render(
        title=_words(config.title, app, k),
        intro=_words(config.intro, app, k),
        app=app,
        since=b.since.isoformat(),
        until=b.until.isoformat(),
        data_date=data_date,
        published=(now or datetime.now(UTC)).date().isoformat(),
        k=k,
        round_to=policy.round_to,
        headlines=headlines,
        sections=sections,
        privacy=Markup(markdown.to_html(privacy_listing(app, declaration), heading_offset=1)),  # noqa: S704 - escaped
        opt_out_url=config.opt_out_url,
        version=__version__,
    )
    files = {"index.html": page}
    for s in sections:
        meta = {
            "title": s["title"],
            "application": app,
            "period": {"since": b.since.isoformat(), "until": b.until.isoformat()},
            "data_up_to": data_date,
            "minimum_users_per_cell": k,
            "counts_rounded_to": policy.round_to,
            "columns": s["columns"],
            "rows": s["rows"],
        }
        files[f"data/{s['slug']}.json"] = json.dumps(meta, indent=1, ensure_ascii=False) + "\n"
        files[f"data/{s['slug']}.csv"] = _csv(s["section"])
    _write(out, files)
    written.files = sorted(files)
    written.sections = len(sections)
    return written
