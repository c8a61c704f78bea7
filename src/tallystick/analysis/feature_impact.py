"""Feature impact: is an outcome rarer (or commoner) among sessions that use a feature?

Sessions are split by a feature attribute (``--feature tabCompletion``, with
``--value`` as the "using it" value, ``true`` by default; everything else, missing
included, is "not using it"). The outcome rate in each group, the relative difference
(rate with / rate without − 1) and its Katz log interval; the same per user (share of
users who had the outcome at least once), which is only indicative because users with
more sessions have more chances.
"""

from __future__ import annotations

from typing import Any

from tallystick.analysis.errors import BadParameter
from tallystick.analysis.outcome import outcome
from tallystick.analysis.report import Report, Table, bar_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.stats import risk_ratio, wilson


def run(b: Bound, params: dict[str, Any]) -> Report:
    feature = params.get("feature")
    if not feature:
        raise BadParameter("name the feature attribute with --feature, e.g. --feature tabCompletion")
    b.require_attribute(str(feature))
    value = str(params.get("value") or "true")
    what = outcome(b, params, event_key="outcome")
    d = b.dialect
    confidence = float(params.get("confidence") or 0.95)
    typed = b.typed(str(feature), *what.attributes)  # the attributes' own columns, not the JSON (warehouse/rollup.py)
    feature_sql = b.typed_attr(str(feature)) if typed else b.attr(str(feature))
    user = '"userKey"' if typed else d.user_key()
    split = (
        f"SELECT CASE WHEN {feature_sql} = {d.literal(value)} THEN 1 ELSE 0 END AS f, {user} AS u "
        f"FROM {'sessions_typed' if typed else 'sessions'} WHERE {b.sessions_where(typed=typed)}"
    )
    # Sessions and users per group, then those with the outcome: grouping by user once is cheaper than two
    # distinct counts, and the outcome's condition (a join with events) only runs in the second query.
    rows = b.rows(
        f"SELECT f, sum(n), count(*) FROM (SELECT f, u, count(*) AS n FROM ({split}) s GROUP BY f, u) t GROUP BY f"
    )
    hits = {
        int(f): (int(k), int(uk))
        for f, k, uk in b.rows(
            f"SELECT f, count(*), count(DISTINCT u) FROM ({split} AND {what.on(typed)}) t GROUP BY f"
        )
    }
    if not hits:
        what.none_found(b)
    groups: dict[int, tuple[int, int, int, int]] = {}
    for f, n, u in rows:
        k, uk = hits.get(int(f), (0, 0))
        groups[int(f)] = (int(n), k, int(u), uk)
    if not groups:
        raise b.empty()
    if set(groups) != {0, 1}:
        missing = "with" if 1 not in groups else "without"
        raise BadParameter(f"no session in scope is {missing} {feature}={value}: there is nothing to compare")
    (n1, k1, u1, uk1), (n0, k0, u0, uk0) = groups[1], groups[0]
    rr, lo, hi = risk_ratio(k1, n1, k0, n0, confidence)
    urr, ulo, uhi = risk_ratio(uk1, u1, uk0, u0, confidence)
    rows_out = []
    for label, (n, k, u, uk) in ((f"{feature}={value}", groups[1]), ("otherwise", groups[0])):
        wlo, whi = wilson(k, n, confidence)
        rows_out.append([label, n, k, round(k / n, 5), round(wlo, 5), round(whi, 5), u, uk, round(uk / u, 4)])
    table = Table(
        "groups",
        [
            "group",
            "sessions",
            "with_outcome",
            "rate",
            "rate_lo",
            "rate_hi",
            "users",
            "users_with_outcome",
            "user_share",
        ],
        rows_out,
    )
    return Report(
        analysis="feature-impact",
        title=f"Do sessions with {feature}={value} have {what.label} less often?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary={
            "feature": feature,
            "value": value,
            "outcome": what.label,
            "confidence": confidence,
            "rate_with": k1 / n1,
            "rate_without": k0 / n0,
            "relative_difference": rr - 1,
            "relative_difference_lo": lo - 1,
            "relative_difference_hi": hi - 1,
            "users_relative_difference": urr - 1,
            "users_relative_difference_lo": ulo - 1,
            "users_relative_difference_hi": uhi - 1,
        },
        tables=[
            table,
            Table(
                "difference",
                ["per", "relative_difference", "lo", "hi"],
                [
                    ["session", round(rr - 1, 4), round(lo - 1, 4), round(hi - 1, 4)],
                    ["user", round(urr - 1, 4), round(ulo - 1, 4), round(uhi - 1, 4)],
                ],
            ),
        ],
        notes=[
            f"relative difference = rate with / rate without − 1; {confidence:.0%} Katz interval; −0.3 means 30 % less",
            "an association, not proof of cause: users who turn a feature on may differ in other ways",
            "the per-user comparison favours the group whose users run the tool less often",
        ],
        chart=bar_chart(
            table,
            "group",
            "rate",
            title=f"{what.label} rate with and without {feature}",
            percent=True,
            error=("rate_lo", "rate_hi"),
        ),
    )
