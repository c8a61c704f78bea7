"""What to publish: a TOML file naming the analyses, the period, the title and the text around each chart.

``DEFAULT`` is the configuration used when none is given (versions in use, operating systems,
shells and the headline answers); ``tallystick publish --print-config`` prints it as a start.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tallystick.analysis.errors import UnknownAnalysis
from tallystick.analysis.registry import get
from tallystick.publish.cells import Policy
from tallystick.publish.errors import BadConfig, Unpublishable

CHARTS = ("bars", "lines")
PUBLISHABLE = ("adoption", "breakdown", "distribution", "feature-impact")  # their cells count distinct users
DRAWN = {"adoption": "lines", "distribution": "bars", "feature-impact": "bars"}  # breakdown has both
_SLUG = re.compile(r"[^a-z0-9]+")

DEFAULT_TOML = """\
# tallystick publish: what to show the people who sent the data.
title = "How people use {app}"
intro = "These numbers come from the usage data {app} sends when its users allow it, at least {k} users each."
# app = "mytool"            # default: the only application in the warehouse
# since = "2025-01-01"      # first day (YYYY-MM-DD, or e.g. "90d" for 90 days ago); default: all data
# until = "2025-03-31"      # last day, inclusive; default: the latest
# period = "previous-month" # instead of since/until: the last whole calendar month (or "previous-week")
k = 10                      # the fewest distinct users behind any published number
round_to = 5                # counts are rounded to a multiple of this (1: exact)
headlines = true            # open with one sentence per chart
# opt_out_url = "https://example.org/mytool/telemetry#opt-out"   # default: the site's own section
# server_config = "server.toml"   # lists the application's declared attributes in "What is collected"

[[chart]]
analysis = "adoption"
title = "Versions in use"
text = "The share of active users on each version; versions with fewer than {k} users in a period are other."

[[chart]]
analysis = "breakdown"
params = { attribute = "osName" }        # as tallystick's client sends it
title = "Operating systems"
text = "The share of users on each operating system over the whole period."
optional = true                          # left out when no session has the attribute

[[chart]]
analysis = "breakdown"
params = { attribute = "operatingSystem" }   # as the demo (and some other clients) send it
title = "Operating systems"
text = "The share of users on each operating system over the whole period."
optional = true

[[chart]]
analysis = "breakdown"
params = { attribute = "shell" }
title = "Shells"
text = "The share of users running each shell. A user with several shells counts once for each."
optional = true
"""

_TOP_KEYS = {
    "title",
    "intro",
    "app",
    "since",
    "until",
    "period",
    "k",
    "round_to",
    "headlines",
    "opt_out_url",
    "server_config",
    "chart",
}
_CHART_KEYS = {"analysis", "params", "title", "text", "chart", "optional"}


@dataclass(frozen=True)
class ChartConfig:
    """One chart: an analysis with its parameters, and the words around it."""

    analysis: str
    params: dict[str, Any]
    title: str
    text: str = ""
    chart: str | None = None  # bars | lines; None: the analysis's usual picture
    slug: str = ""
    optional: bool = False  # left out (not an error) when its attribute or event type is not in the data


@dataclass(frozen=True)
class PublishConfig:
    title: str = "How people use {app}"
    intro: str = ""
    app: str | None = None
    since: date | None = None
    until: date | None = None
    policy: Policy = field(default_factory=Policy)
    headlines: bool = True
    opt_out_url: str | None = None
    server_config: Path | None = None
    charts: tuple[ChartConfig, ...] = ()


def _date(value: Any, key: str, today: date) -> date | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = str(value)
    if text.endswith("d") and text[:-1].isdigit():
        return today - timedelta(days=int(text[:-1]))
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadConfig(f"{key} = {value!r}: use a date YYYY-MM-DD or e.g. '90d'") from None


def _period(raw: dict[str, Any], today: date) -> tuple[date | None, date | None]:
    """``since``/``until``, or the last whole calendar month or week (``period``): fixed periods, each
    published once, leave nothing to difference between two sites (see docs/publishing.md)."""
    period = raw.get("period")
    if period is None:
        return _date(raw.get("since"), "since", today), _date(raw.get("until"), "until", today)
    if "since" in raw or "until" in raw:
        raise BadConfig("period = ... replaces since and until: give one or the other")
    if period == "previous-month":
        until = today.replace(day=1) - timedelta(days=1)
        return until.replace(day=1), until
    if period == "previous-week":
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday - timedelta(days=1)
    raise BadConfig(f"period = {period!r}: use previous-month or previous-week (or since/until)")


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise BadConfig(f"{key} must be text in quotes, not {value!r}")
    return value


def _url(value: Any) -> str:
    text = _str(value, "opt_out_url")
    if not re.match(r"^(https?://|/|#|[A-Za-z0-9._-]+(/|\.html?|#|$))", text):
        raise BadConfig(f"opt_out_url = {value!r}: use an https:// address or a path on the same site")
    return text


def _int(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadConfig(f"{key} must be a whole number, not {value!r}")
    return value


def check(chart: ChartConfig) -> None:
    """Raise Unpublishable unless ``chart``'s analysis counts distinct users per cell (see ``sections``)."""
    if chart.analysis not in PUBLISHABLE:
        raise Unpublishable(
            f"{chart.analysis} cannot be published: its tables count sessions, events or spans, not distinct users, "
            f"so no cell can be checked against k; publishable: {', '.join(PUBLISHABLE)}"
        )
    if chart.analysis == "distribution" and chart.params.get("per", "user") != "user":
        raise Unpublishable(f'{chart.slug}: distribution counts users only with per = "user"; set it or leave it out')
    if chart.chart and chart.chart != DRAWN.get(chart.analysis, chart.chart):
        raise Unpublishable(f"{chart.slug}: {chart.analysis} is drawn as {DRAWN[chart.analysis]}; leave out chart")


def _chart(raw: Any, i: int, used: set[str]) -> ChartConfig:
    where = f"[[chart]] number {i + 1}"
    if not isinstance(raw, dict):
        raise BadConfig(f"{where} must be a table with analysis = ..., title = ...")
    unknown = set(raw) - _CHART_KEYS
    if unknown:
        raise BadConfig(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_CHART_KEYS))}"
        )
    if "analysis" not in raw:
        raise BadConfig(f'{where} needs analysis = NAME, e.g. analysis = "breakdown"')
    name = _str(raw["analysis"], f"{where}: analysis")
    try:
        analysis = get(name)
    except UnknownAnalysis as exc:
        raise BadConfig(f"{where}: {exc}") from None
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise BadConfig(f'{where}: params must be a table, e.g. params = {{ attribute = "shell" }}')
    known = {p.name for p in analysis.params}
    if set(params) - known:
        extra = ", ".join(sorted(set(params) - known))
        raise BadConfig(f"{where}: {name} takes no parameter {extra}; it takes: {', '.join(sorted(known)) or 'none'}")
    chart = raw.get("chart")
    if chart is not None and chart not in CHARTS:
        raise BadConfig(f"{where}: chart = {chart!r}: use one of {', '.join(CHARTS)}")
    title = _str(raw.get("title", analysis.title), f"{where}: title")
    base = _SLUG.sub("-", f"{name} {' '.join(str(v) for v in params.values())}".lower()).strip("-") or "chart"
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise BadConfig(f"{where}: optional must be true or false, not {optional!r}")
    text = _str(raw.get("text", ""), f"{where}: text")
    result = ChartConfig(name, dict(params), title, text, chart, slug, optional)
    check(result)
    return result


def parse(
    text: str, *, source: str = "publish config", base: Path | None = None, today: date | None = None
) -> PublishConfig:
    """The configuration in TOML ``text``; raises BadConfig naming the key to fix."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadConfig(f"{source} is not valid TOML: {exc}") from None
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise BadConfig(f"{source}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_TOP_KEYS))}")
    today = today or datetime.now(UTC).date()
    charts_raw = raw.get("chart", [])
    if not isinstance(charts_raw, list) or not charts_raw:
        raise BadConfig(f"{source}: name at least one chart with [[chart]] analysis = ...")
    used: set[str] = set()
    since, until = _period(raw, today)
    server_config = raw.get("server_config")
    return PublishConfig(
        title=_str(raw.get("title", "How people use {app}"), "title"),
        intro=_str(raw.get("intro", ""), "intro"),
        app=_str(raw["app"], "app") if "app" in raw else None,
        since=since,
        until=until,
        policy=Policy(_int(raw.get("k", 10), "k"), _int(raw.get("round_to", 5), "round_to")),
        headlines=bool(raw.get("headlines", True)),
        opt_out_url=_url(raw["opt_out_url"]) if "opt_out_url" in raw else None,
        server_config=(base or Path()) / _str(server_config, "server_config") if server_config else None,
        charts=tuple(_chart(c, i, used) for i, c in enumerate(charts_raw)),
    )


def load(path: str | Path | None) -> PublishConfig:
    """The configuration in ``path``, or ``DEFAULT`` when None."""
    if path is None:
        return parse(DEFAULT_TOML, source="the default config")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadConfig(f"cannot read {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BadConfig(f"{p} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    return parse(text, source=str(p), base=p.parent)
