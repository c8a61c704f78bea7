"""The published site: planted rare values never appear in any file, values of k users do, text is escaped."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from publish.conftest import EXACTLY_K_SHELL, PAYLOAD_SHELL, RARE, TAIL_SHELLS, K
from tallystick.analysis import ANALYSES
from tallystick.publish import BadConfig, Unpublishable, parse_config, publish
from tallystick.warehouse.duckdb import DuckDBWarehouse


def every_file(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


def test_the_site_has_a_page_and_json_and_csv_for_every_chart(planted_site: Path) -> None:
    """index.html, and per chart data/<slug>.json and .csv with the same rows."""
    files = every_file(planted_site)
    assert "index.html" in files
    slugs = {Path(f).stem for f in files if f.startswith("data/")}
    assert len(slugs) == 6
    for slug in slugs:
        meta = json.loads(files[f"data/{slug}.json"])
        rows = list(csv.reader(files[f"data/{slug}.csv"].decode().splitlines()))
        assert rows[0] == meta["columns"]
        assert len(rows) - 1 == len(meta["rows"]) > 0
        assert meta["minimum_users_per_cell"] == K


@pytest.mark.parametrize("name", sorted(RARE), ids=str)
def test_a_value_of_one_user_appears_in_no_file(planted_site: Path, name: str) -> None:
    """The planted user's shell, operating system and version are in no HTML, JSON, CSV or chart."""
    value = RARE[name].encode()
    for path, data in every_file(planted_site).items():
        assert value.lower() not in data.lower(), path
    assert b"zqxrare" not in b"".join(every_file(planted_site).values()).lower()


def test_values_under_k_appear_in_no_file_even_together(planted_site: Path) -> None:
    """The tail's shells (4 users each) are only ever counted inside "other"."""
    blob = b"".join(every_file(planted_site).values())
    for shell in TAIL_SHELLS:
        assert shell.encode() not in blob


def test_a_value_of_exactly_k_users_is_published(planted_site: Path) -> None:
    """The shell used by exactly k users is named, with k users, on the page and in both data files."""
    files = every_file(planted_site)
    assert EXACTLY_K_SHELL.encode() in files["index.html"]
    rows = json.loads(files["data/breakdown-shell.json"])["rows"]
    assert next(r for r in rows if r[0] == EXACTLY_K_SHELL)[:2] == [EXACTLY_K_SHELL, K]
    assert EXACTLY_K_SHELL.encode() in files["data/breakdown-shell.csv"]


def test_every_published_count_is_at_least_k(planted_site: Path) -> None:
    """No users column of any data file holds a number under k (None is "fewer than k")."""
    for path in sorted((planted_site / "data").glob("*.json")):
        meta = json.loads(path.read_text())
        users = meta["columns"].index("users")
        for row in meta["rows"]:
            assert row[users] is None or row[users] >= K, (path.name, row)


def test_client_values_are_escaped_in_the_page(planted_site: Path) -> None:
    """A shell named like an HTML tag is published (12 users) as text, never as markup."""
    page = (planted_site / "index.html").read_text()
    assert PAYLOAD_SHELL not in page
    assert "&lt;img src=x onerror=" in page
    assert "<script" not in page


def test_every_page_says_what_is_collected_when_and_how_to_opt_out(planted_site: Path) -> None:
    """The privacy listing, the date of the data and the opt-out section are on the page."""
    page = (planted_site / "index.html").read_text()
    assert 'id="collected"' in page
    assert "osName" in page  # from the client's catalog, as `tallystick privacy` lists it
    assert "data up to 2025-06-" in page
    assert 'href="#opt-out"' in page
    assert "DO_NOT_TRACK=1" in page


def test_the_page_asks_for_nothing_from_elsewhere(planted_site: Path) -> None:
    """No script, and a Content-Security-Policy that forbids fetching anything."""
    page = (planted_site / "index.html").read_text()
    assert "default-src 'none'" in page
    assert "<script" not in page
    assert "https://" not in page.replace("https://vega.github.io", "")


def test_the_default_site_is_under_one_megabyte(planted_warehouse: DuckDBWarehouse, tmp_path: Path) -> None:
    """The default config (versions, operating systems, shells, headlines) weighs well under 1 MB."""
    from tallystick.publish import load_config

    written = publish(planted_warehouse, load_config(None), tmp_path)
    assert written.bytes == sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert written.bytes < 1_000_000
    page = (tmp_path / "index.html").read_text()
    assert page.count('class="published"') == 3
    assert "About " in page
    assert "users ran demo" in page


def test_a_chart_removed_from_the_config_takes_its_files_with_it(
    planted_warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    """Publishing again into the same directory leaves no data file of a chart no longer configured."""
    one = '[[chart]]\nanalysis = "breakdown"\nparams = { attribute = "shell" }\n'
    two = one + '[[chart]]\nanalysis = "breakdown"\nparams = { attribute = "architecture" }\n'
    publish(planted_warehouse, parse_config(two), tmp_path)
    assert (tmp_path / "data" / "breakdown-architecture.json").exists()
    publish(planted_warehouse, parse_config(one), tmp_path)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["breakdown-shell.csv", "breakdown-shell.json"]


@pytest.mark.parametrize(
    "name",
    [a.name for a in ANALYSES if a.name not in ("adoption", "breakdown", "distribution", "feature-impact")],
    ids=str,
)
def test_analyses_that_do_not_count_users_are_refused(name: str) -> None:
    """An analysis whose cells count sessions or spans cannot be checked against k: refused, saying why."""
    with pytest.raises(Unpublishable, match="not distinct users"):
        parse_config(f'[[chart]]\nanalysis = "{name}"\n')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k = 1\n[[chart]]\nanalysis = 'adoption'\n", "at least 2"),
        ("[[chart]]\nanalysis = 'nope'\n", "no analysis called 'nope'"),
        ("[[chart]]\nanalysis = 'breakdown'\nparams = { colour = 'x' }\n", "takes no parameter colour"),
        ("[[chart]]\nanalysis = 'breakdown'\nchart = 'pie'\n", "use one of bars, lines"),
        ("[[chart]]\nanalysis = 'adoption'\nchart = 'bars'\n", "adoption is drawn as lines"),
        ("[[chart]]\nanalysis = 'distribution'\nparams = { attribute = 'x', per = 'session' }\n", 'per = "user"'),
        ("titel = 'x'\n[[chart]]\nanalysis = 'adoption'\n", "unknown key"),
        ("since = 'yesterday'\n[[chart]]\nanalysis = 'adoption'\n", "since = 'yesterday'"),
        ("opt_out_url = 'javascript:alert(1)'\n[[chart]]\nanalysis = 'adoption'\n", "opt_out_url"),
        ("title = 'x'\n", "at least one chart"),
        ("title = \n", "not valid TOML"),
        ("period = 'previous-month'\nsince = '2025-01-01'\n[[chart]]\nanalysis = 'adoption'\n", "one or the other"),
        ("period = 'last-year'\n[[chart]]\nanalysis = 'adoption'\n", "use previous-month or previous-week"),
    ],
    ids=[
        "k",
        "analysis",
        "param",
        "chart",
        "adoption-bars",
        "per-session",
        "key",
        "date",
        "url",
        "no-chart",
        "toml",
        "period-and-since",
        "period",
    ],
)
def test_bad_config_says_what_to_fix(text: str, message: str) -> None:
    """Each mistake in the config is one error (BadConfig or Unpublishable) naming the key."""
    with pytest.raises((BadConfig, Unpublishable), match=re.escape(message)):
        parse_config(text)


def test_a_population_under_k_publishes_no_number(planted_warehouse: DuckDBWarehouse, tmp_path: Path) -> None:
    """With k above the number of users every chart is withheld: no rows, no headline, a note instead."""
    config = parse_config('k = 100000\n[[chart]]\nanalysis = "breakdown"\nparams = { attribute = "shell" }\n')
    written = publish(planted_warehouse, config, tmp_path)
    assert written.withheld == ["breakdown-shell"]
    assert json.loads((tmp_path / "data" / "breakdown-shell.json").read_text())["rows"] == []
    page = (tmp_path / "index.html").read_text()
    assert "Not shown: fewer than 100000 users" in page
    assert "users ran demo" not in page
    assert "fish" not in page


def test_a_feature_share_is_withheld_when_either_side_is_under_k(
    planted_warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    """feature-impact: a group's share with the outcome is published only if k users had it and k did not."""
    chart = (
        '[[chart]]\nanalysis = "feature-impact"\nparams = { feature = "tabCompletion", outcome = "UnknownCommand" }\n'
    )
    publish(planted_warehouse, parse_config("k = 100\nround_to = 1\n" + chart), tmp_path / "strict")
    rows = json.loads((tmp_path / "strict" / "data" / "feature-impact-tabcompletion-unknowncommand.json").read_text())
    assert [r[1:] for r in rows["rows"]] == [[None, None, True], [None, None, True]]
    publish(planted_warehouse, parse_config("k = 10\nround_to = 1\n" + chart), tmp_path / "loose")
    rows = json.loads((tmp_path / "loose" / "data" / "feature-impact-tabcompletion-unknowncommand.json").read_text())
    assert all(r[1] >= 10 and 0 < r[2] < 1 for r in rows["rows"])


@pytest.mark.parametrize(
    ("period", "since", "until"),
    [("previous-month", "2025-06-01", "2025-06-30"), ("previous-week", "2025-06-30", "2025-07-06")],
    ids=["month", "week"],
)
def test_a_fixed_period_is_the_last_whole_month_or_week(period: str, since: str, until: str) -> None:
    """period = "previous-month" on 2025-07-09 is June; "previous-week" is Monday to Sunday before this week."""
    from datetime import date

    config = parse_config(f'period = "{period}"\n[[chart]]\nanalysis = "adoption"\n', today=date(2025, 7, 9))
    assert (config.since, config.until) == (date.fromisoformat(since), date.fromisoformat(until))
