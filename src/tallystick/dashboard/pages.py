"""The dashboard's routes: server-rendered pages (Jinja2, autoescaped) and their JSON data.

Pages render the numbers and forms; ``static/dashboard.js`` fetches each page's chart
specs from ``/api/...`` and draws them with the vendored Vega-Lite. Warehouse work runs
in a worker thread through the ``Reader`` (read-only, sandboxed, one lock per file).
"""

from __future__ import annotations

import io
import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tallystick import __version__
from tallystick._csv import spreadsheet_safe
from tallystick._csv import writer as csv_writer
from tallystick.analysis import words
from tallystick.dashboard import analyses as analyses_mod
from tallystick.dashboard import auth, charts
from tallystick.dashboard import explore as explore_mod
from tallystick.dashboard import overview as overview_mod
from tallystick.dashboard.errors import BadQuery, NoData
from tallystick.dashboard.reader import Connection, Reader, jsonable
from tallystick.dashboard.signin import SignIns, Throttle
from tallystick.warehouse.tables import tables

HERE = Path(__file__).parent
MAX_ROWS = 1000
MAX_CSV_ROWS = 100_000
DEFAULT_SQL = (
    'SELECT "applicationVersion", count(*) AS sessions, count(DISTINCT "userId") AS users\n'
    'FROM sessions\nGROUP BY "applicationVersion"\nORDER BY sessions DESC'  # names, not positions: any engine
)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals["static"] = lambda path: f"/static/{path}?v={__version__}"


def show(value: Any) -> str:
    """A value of an analysis's summary or table as short text (the template escapes it)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return words.number(value)  # thousands separators, never 1.665e+04
    if isinstance(value, dict | list | tuple):
        return json.dumps(jsonable(value), ensure_ascii=False, separators=(", ", ": "))[:300]
    return str(jsonable(value))


_env.globals["show"] = show


def show_summary(key: str, value: Any) -> str:
    """A summary tile's value in the unit its name says: shares and rates in %, ``*_ms`` as a duration."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        words_of_key = key.lower().split("_")
        if key.lower().endswith("_ms"):
            return words.duration(value)
        shares = {"rate", "share", "threshold"}  # a threshold is a slowdown: 0.1 = 10 % slower
        if isinstance(value, float) and shares & set(words_of_key) and 0.0 <= value <= 1.0:
            return words.percent(value)
    return show(value)


WORD = 30  # characters: a longer word may be broken, a screen must hold it


def unbroken(value: str | None) -> Markup:
    """A tile's value with each word of up to ``WORD`` characters in a ``part`` span, kept on one line: a browser
    otherwise breaks ``2026-12-03T13:09:39`` or ``1.4.0-rc.1`` after a hyphen to fit a narrow tile."""
    out = Markup("")
    for piece in re.split(r"(\s+)", value or ""):
        if piece and not piece.isspace() and len(piece) <= WORD:
            out += Markup('<span class="part">{}</span>').format(piece)
        else:
            out += piece  # escaped by Markup's +
    return out


_env.globals["unbroken"] = unbroken


def summary_label(key: str) -> str:
    """A summary tile's label: its key in words, without the ``ms`` its value no longer shows."""
    return key.removesuffix("_ms").replace("_", " ")


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula (see tallystick._csv)."""
    return spreadsheet_safe(value)


class Dashboard:
    """The dashboard's handlers over one warehouse."""

    def __init__(self, reader: Reader, token: str | None = None) -> None:
        self.reader = reader
        self.token = token
        self.sessions = SignIns()
        self.throttle = Throttle()

    # --- helpers ---------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        app = context.get("app")
        context.setdefault("app_query", f"?app={app}" if app else "")
        context.setdefault("charts", False)
        context.setdefault("chart_data", None)
        context.setdefault("notice", "")
        context["logged_in"] = bool(self.token) and self.sessions.valid(request.cookies.get(auth.COOKIE, ""))
        html = _env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status)

    async def work(self, fn: Any, *args: Any) -> Any:
        return await run_in_threadpool(self.reader.run, lambda con: fn(con, *args))

    @staticmethod
    def problem(exc: Exception, status: int) -> JSONResponse:
        return JSONResponse({"message": str(exc)}, status_code=status)

    # --- overview ---------------------------------------------------------------------------------

    async def overview_page(self, request: Request) -> Response:
        wanted = request.query_params.get("app")
        try:
            ov = await self.work(overview_mod.overview, wanted)
        except NoData as exc:
            return self.render(
                request,
                "overview.html",
                page="overview",
                title="Overview",
                notice=str(exc),
                apps=[],
                app=None,
                totals=None,
            )
        notice = "" if ov.app else "No sessions in the warehouse yet: send some, and the loader brings them in."
        specs = self.overview_specs(ov) if ov.app else {}
        return self.render(
            request,
            "overview.html",
            page="overview",
            title=f"Overview of {ov.app}" if ov.app else "Overview",
            apps=ov.apps,
            app=ov.app,
            totals=ov.totals if ov.app else None,
            completeness_note=ov.completeness_note,
            notice=notice,
            charts=bool(ov.app),
            chart_data={"charts": specs},
        )

    @staticmethod
    def overview_specs(ov: overview_mod.Overview) -> dict[str, Any]:
        return {"activity": charts.activity(ov), "versions": charts.versions(ov), "errors": charts.errors(ov)}

    async def overview_api(self, request: Request) -> Response:
        try:
            ov = await self.work(overview_mod.overview, request.query_params.get("app"))
        except NoData as exc:
            return self.problem(exc, 503)
        if not ov.app:
            return JSONResponse({"charts": {}})
        return JSONResponse({"app": ov.app, "charts": self.overview_specs(ov)})

    # --- explore ----------------------------------------------------------------------------------

    @staticmethod
    def _complete(con: Connection, state: explore_mod.ExploreState) -> list[tuple[str, int]]:
        """Fill in the app, dates and grain ``state`` leaves open; the apps to choose from."""
        apps = overview_mod.applications(con)
        state.app = overview_mod.pick_app(apps, state.app)
        if state.app:
            first, last = explore_mod.date_range(con, state.app)
            state.end = state.end or last
            state.start = state.start or (max(first, state.end - timedelta(days=180)) if first and state.end else None)
            if state.start and state.end:
                state.grain = state.grain or explore_mod.auto_grain(state.start, state.end)
        return apps

    async def explore_page(self, request: Request) -> Response:
        try:
            state = explore_mod.parse_state(request.query_params)
        except BadQuery as exc:
            return self.render(request, "message.html", 400, page="explore", title="Explore", notice=str(exc))

        def gather(con: Connection) -> tuple[Any, ...]:
            apps = self._complete(con, state)
            if not state.app:
                return apps, None, [], None
            opts = explore_mod.options(con, state.app)
            rows = [*state.filters, *[("", "")] * max(0, 3 - len(state.filters))][: max(3, len(state.filters))]
            suggestions = [explore_mod.values(con, state.app, k) if k else [] for k, _ in rows]
            series = explore_mod.series(con, state)
            return apps, opts, list(zip(rows, suggestions, strict=True)), series

        try:
            apps, opts, rows, series = await run_in_threadpool(self.reader.run, gather)
        except NoData as exc:
            return self.render(request, "message.html", page="explore", title="Explore", notice=str(exc))
        except BadQuery as exc:
            return self.render(request, "message.html", 400, page="explore", title="Explore", notice=str(exc))
        metrics = list(explore_mod.METRICS.items())
        return self.render(
            request,
            "explore.html",
            page="explore",
            title=f"Explore {state.app}" if state.app else "Explore",
            apps=apps,
            app=state.app,
            opts=opts,
            state=state,
            metrics=metrics,
            filter_rows=[r for r, _ in rows],
            suggestions=[s for _, s in rows],
            charts=bool(opts),
            chart_data={"charts": {"explore": charts.explore(series, state.view, state.by)} if series else {}},
            notice="" if state.app else "No sessions in the warehouse yet.",
        )

    async def explore_api(self, request: Request) -> Response:
        try:
            state = explore_mod.parse_state(request.query_params)

            def compute(con: Connection) -> Any:
                self._complete(con, state)
                return explore_mod.series(con, state) if state.app else None

            series = await run_in_threadpool(self.reader.run, compute)
        except BadQuery as exc:
            return self.problem(exc, 400)
        except NoData as exc:
            return self.problem(exc, 503)
        if series is None:
            return JSONResponse({"charts": {}})
        spec = charts.explore(series, state.view, state.by)
        return JSONResponse({"charts": {"explore": spec}, "query": state.query_string(), "points": len(series.rows)})

    async def values_api(self, request: Request) -> Response:
        app = request.query_params.get("app", "")
        key = request.query_params.get("key", "")
        try:
            found = await self.work(explore_mod.values, app, key)
        except BadQuery as exc:
            return self.problem(exc, 400)
        except NoData as exc:
            return self.problem(exc, 503)
        return JSONResponse({"values": found})

    # --- analyses ---------------------------------------------------------------------------------

    async def analyses_page(self, request: Request) -> Response:
        app = request.query_params.get("app")
        return self.render(
            request, "analyses.html", page="analyses", title="Analyses", app=app, analyses=analyses_mod.listing()
        )

    def _analyse(self, request: Request) -> tuple[Any, list[tuple[str, int]], analyses_mod.Outcome]:
        analysis = analyses_mod.find(request.path_params["name"])
        if analysis is None:
            raise NoData(f"no analysis called {request.path_params['name']!r}: see /analyses")

        def work(con: Connection) -> tuple[list[tuple[str, int]], analyses_mod.Outcome]:
            apps = overview_mod.applications(con)
            app = overview_mod.pick_app(apps, request.query_params.get("app"))
            return apps, analyses_mod.analyse(con, analysis, app, request.query_params)

        apps, outcome = self.reader.run(work)
        return analysis, apps, outcome

    @staticmethod
    def analysis_spec(outcome: analyses_mod.Outcome) -> dict[str, Any] | None:
        if not outcome.report or not outcome.report.chart:
            return None
        spec = dict(jsonable(outcome.report.chart))
        spec["width"] = "container"  # the card's width, not the fixed size a PNG export uses
        spec.setdefault("autosize", {"type": "fit", "contains": "padding"})
        return spec

    async def analysis_page(self, request: Request) -> Response:
        try:
            analysis, apps, outcome = await run_in_threadpool(self._analyse, request)
        except NoData as exc:
            status = 404 if "no analysis called" in str(exc) else 200
            return self.render(request, "message.html", status, page="analyses", title="Analyses", notice=str(exc))
        except BadQuery as exc:
            return self.render(request, "message.html", 400, page="analyses", title="Analyses", notice=str(exc))
        scope = outcome.scope
        spec = self.analysis_spec(outcome)
        report = outcome.report
        return self.render(
            request,
            "analysis.html",
            page=f"analysis:{analysis.name}",
            title=analysis.title,
            analysis=analysis,
            apps=apps,
            app=scope.app if scope else None,
            since=request.query_params.get("since", ""),
            until=request.query_params.get("until", ""),
            where=request.query_params.get("where", ""),
            params=outcome.params,
            attributes=outcome.attributes,
            problem=outcome.problem,
            report=report,
            summary=[  # nested values are in the tables below
                (summary_label(k), show_summary(k, v))
                for k, v in (report.summary.items() if report else [])
                if not isinstance(v, dict | list)
            ],
            max_rows=100,
            charts=spec is not None,
            chart_data={"charts": {"analysis": spec}} if spec else None,
        )

    async def analysis_api(self, request: Request) -> Response:
        try:
            _, _, outcome = await run_in_threadpool(self._analyse, request)
        except NoData as exc:
            return self.problem(exc, 404 if "no analysis called" in str(exc) else 503)
        except BadQuery as exc:
            return self.problem(exc, 400)
        if outcome.problem:
            return self.problem(BadQuery(outcome.problem), 400)
        assert outcome.report is not None
        return JSONResponse({"charts": {"analysis": self.analysis_spec(outcome)}, "report": outcome.report.to_dict()})

    # --- SQL --------------------------------------------------------------------------------------

    def run_sql(self, sql: str, max_rows: int) -> tuple[list[str], list[Any], bool, float]:
        if not sql.strip():
            raise BadQuery("write a query first, e.g. SELECT count(*) FROM sessions")

        def run(con: Connection) -> tuple[list[str], list[Any], bool, float]:
            started = time.perf_counter()
            result = con.query(sql, max_rows=max_rows + 1)
            elapsed = (time.perf_counter() - started) * 1000
            return result.columns, result.rows[:max_rows], len(result.rows) > max_rows, elapsed

        return self.reader.run(run)

    async def sql_page(self, request: Request) -> Response:
        return self.render(
            request,
            "sql.html",
            page="sql",
            title="SQL",
            sql=request.query_params.get("q") or DEFAULT_SQL,
            max_rows=MAX_ROWS,
            max_csv_rows=MAX_CSV_ROWS,
            tables=tables(),
        )

    async def sql_api(self, request: Request) -> Response:
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            # A form or a no-cors fetch from another page can send text/plain without a preflight.
            return self.problem(BadQuery('send Content-Type: application/json with {"sql": "SELECT ..."}'), 415)
        try:
            body = await request.json()
        except ValueError:
            return self.problem(BadQuery('send JSON: {"sql": "SELECT ..."}'), 400)
        sql = body.get("sql") if isinstance(body, dict) else None
        if not isinstance(sql, str):
            return self.problem(BadQuery('send JSON: {"sql": "SELECT ..."}'), 400)
        try:
            columns, rows, truncated, ms = await run_in_threadpool(self.run_sql, sql, MAX_ROWS)
        except BadQuery as exc:
            return self.problem(exc, 400)
        except NoData as exc:
            return self.problem(exc, 503)
        return JSONResponse(
            {"columns": columns, "rows": [jsonable(list(r)) for r in rows], "truncated": truncated, "ms": round(ms, 1)}
        )

    async def sql_csv(self, request: Request) -> Response:
        try:
            columns, rows, truncated, _ = await run_in_threadpool(
                self.run_sql, request.query_params.get("q", ""), MAX_CSV_ROWS
            )
        except BadQuery as exc:
            return self.problem(exc, 400)
        except NoData as exc:
            return self.problem(exc, 503)
        out = io.StringIO()
        writer = csv_writer(out)
        writer.writerow([csv_cell(c) for c in columns])
        writer.writerows([csv_cell(v) for v in jsonable(list(r))] for r in rows)
        headers = {"Content-Disposition": 'attachment; filename="tallystick-query.csv"'}
        if truncated:
            headers["X-Tallystick-Truncated"] = f"first {MAX_CSV_ROWS} rows"
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)

    # --- login ------------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if not self.token:
            return RedirectResponse("/", status_code=303)
        nxt = auth.safe_next(request.query_params.get("next"))
        return self.render(request, "login.html", page="login", title="Log in", next=nxt, failed=False)

    async def login(self, request: Request) -> Response:
        if not self.token:
            return RedirectResponse("/", status_code=303)
        given, nxt = await auth.login_token(request)
        client = request.client.host if request.client else ""
        wait = self.throttle.retry_after(client)
        if wait is not None:  # right or wrong: while throttled, no attempt is checked
            throttled = self.render(
                request, "login.html", 429, page="login", title="Log in", next=nxt, failed=False, wait=wait
            )
            throttled.headers["Retry-After"] = str(wait)
            return throttled
        if not auth.token_matches(given, self.token):
            self.throttle.failed(client)
            return self.render(request, "login.html", 401, page="login", title="Log in", next=nxt, failed=True)
        response = RedirectResponse(nxt, status_code=303)
        max_age = int(self.sessions.lifetime_seconds)
        auth.set_login_cookie(response, self.sessions.start(), secure=request.url.scheme == "https", max_age=max_age)
        return response

    async def logout(self, request: Request) -> Response:
        """POST only (the Guard refuses one from another site): ends the session on the server too."""
        self.sessions.end(request.cookies.get(auth.COOKIE, ""))
        response = RedirectResponse("/login" if self.token else "/", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # --- routes -----------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        guard = [Middleware(auth.Guard, token=self.token, sessions=self.sessions)]
        pages: list[tuple[str, Any, list[str]]] = [
            ("/", self.overview_page, ["GET"]),
            ("/explore", self.explore_page, ["GET"]),
            ("/sql", self.sql_page, ["GET"]),
            ("/login", self.login_page, ["GET"]),
            ("/login", self.login, ["POST"]),
            ("/logout", self.logout, ["POST"]),
            ("/api/overview", self.overview_api, ["GET"]),
            ("/api/explore", self.explore_api, ["GET"]),
            ("/api/values", self.values_api, ["GET"]),
            ("/analyses", self.analyses_page, ["GET"]),
            ("/analyses/{name}", self.analysis_page, ["GET"]),
            ("/api/analyses/{name}", self.analysis_api, ["GET"]),
            ("/api/sql", self.sql_api, ["POST"]),
            ("/api/sql.csv", self.sql_csv, ["GET"]),
        ]
        routes: list[BaseRoute] = [Route(p, fn, methods=m, middleware=guard) for p, fn, m in pages]
        routes.append(Mount("/static", app=StaticFiles(directory=HERE / "static"), middleware=guard))
        return routes
