"""Feature impact: is an outcome rarer (or commoner) among sessions that use a feature?

Sessions are split by a feature attribute (``--feature tabCompletion``, with
``--value`` as the "using it" value, ``true`` by default; everything else, missing
included, is "not using it"). The outcome rate in each group, the relative difference
(rate with / rate without − 1) and its interval; the same per user (share of users who
had the outcome at least once), which is only indicative because users with more
sessions have more chances.

Sessions of one user are not independent (a heavy user's habits repeat in every
session), so the interval is the Katz log interval widened to a cluster-robust one
(per-user sandwich variance, ``stats.clustered_risk_ratio``) wherever that is wider.
With fewer than ``MIN_USERS`` users or ``MIN_CASES`` sessions with the outcome on a side,
the headline says there is not enough data to say.
"""

from __future__ import annotations

from typing import Any

from tallystick.analysis import confounding, words
from tallystick.analysis.common_factor import sample_sessions
from tallystick.analysis.errors import BadParameter
from tallystick.analysis.outcome import outcome
from tallystick.analysis.report import Report, Table, bar_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.scope import confidence as confidence_of
from tallystick.analysis.stats import USER_SUMS, clustered_of_sums, risk_ratio, widened_risk_ratio, wilson

MIN_USERS = 10
MIN_CASES = 10
CHECK_SAMPLE = 2000  # sessions with the outcome, and as many without, read to check for confounding


def run(b: Bound, params: dict[str, Any]) -> Report:
    feature = params.get("feature")
    if not feature:
        raise BadParameter("name the feature attribute with --feature, e.g. --feature tabCompletion")
    b.require_attribute(str(feature))
    value = str(params.get("value") or "true")
    what = outcome(b, params, event_key="outcome")
    d = b.dialect
    confidence = confidence_of(params)
    typed = b.typed(str(feature), *what.attributes)  # the attributes' own columns, not the JSON (warehouse/rollup.py)
    feature_sql = b.typed_attr(str(feature)) if typed else b.attr(str(feature))
    user = '"userKey"' if typed else d.user_key()
    hit = f"CASE WHEN {what.on(typed)} THEN 1 ELSE 0 END"
    split = (
        f"SELECT CASE WHEN {feature_sql} = {d.literal(value)} THEN 1 ELSE 0 END AS f, {user} AS u, {hit} AS h "
        f"FROM {'sessions_typed' if typed else 'sessions'} WHERE {b.sessions_where(typed=typed)}"
    )
    # One pass: each user's sessions and outcomes with and without the feature, then sums over users of those
    # and of their products (the cluster-robust variance's terms): one row back however many users there are.
    per_user = (
        "SELECT u, sum(f) AS n1, sum(f * h) AS k1, sum(1 - f) AS n0, sum((1 - f) * h) AS k0 "
        f"FROM ({split}) s GROUP BY u"
    )
    counted = ", ".join(f"sum(CASE WHEN {c} > 0 THEN 1 ELSE 0 END)" for c in ("n1", "k1", "n0", "k0"))
    row = b.rows(f"SELECT count(*), {counted}, {', '.join(f'sum({t})' for t in USER_SUMS)} FROM ({per_user}) x")[0]
    users, u1, uk1, u0, uk0 = (int(v or 0) for v in row[:5])
    sums = dict(zip(USER_SUMS, (int(v or 0) for v in row[5:]), strict=True))
    n1, k1, n0, k0 = sums["n1"], sums["k1"], sums["n0"], sums["k0"]
    if not k1 + k0:
        what.none_found(b)
    if not users:
        raise b.empty()
    if not n1 or not n0:
        missing = "with" if not n1 else "without"
        raise BadParameter(f"no session in scope is {missing} {feature}={value}: there is nothing to compare")
    groups = {1: (n1, k1, u1, uk1), 0: (n0, k0, u0, uk0)}
    rr, lo, hi, design_effect = widened_risk_ratio(clustered_of_sums(users, sums), (k1, n1, k0, n0), confidence)
    urr, ulo, uhi = risk_ratio(uk1, u1, uk0, u0, confidence)
    # Do the users with the feature differ in another attribute that matters? The comparison within each
    # value of each other attribute, on common-factor's case–control sample (confounding.py).
    adjusted = None
    # Only where a difference would be claimed: the check withdraws or turns round a claim, and costs a pass.
    if 0 < k1 + k0 < n1 + n0 and not lo <= 1 <= hi:
        sessions, case_weight, control_weight = sample_sessions(b, what, n1 + n0, k1 + k0, CHECK_SAMPLE)
        yes = "true" if value.lower() == "true" else "false" if value.lower() == "false" else value
        units = [
            confounding.Unit(u, int(attrs.get(str(feature)) == yes), case_weight if h else control_weight, h, attrs)
            for h, u, attrs in sessions
        ]
        adjusted = confounding.strongest(units, {str(feature)}, log_ratio=True, confidence=confidence)
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
    summary = {
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
        "sessions_with": n1,
        "sessions_without": n0,
        "users_with": u1,
        "users_without": u0,
        "outcomes_with": k1,
        "outcomes_without": k0,
        "design_effect": design_effect,
        "adjusted": None
        if adjusted is None
        else {
            "attribute": adjusted.attribute,
            "relative_difference": adjusted.ratio - 1,
            "relative_difference_lo": adjusted.lo - 1,
            "relative_difference_hi": adjusted.hi - 1,
        },
    }
    return Report(
        analysis="feature-impact",
        title=f"Do sessions with {feature}={value} have {what.label} less often?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary=summary,
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
            f"relative difference = rate with / rate without − 1; −0.3 means 30 % less; {confidence:.0%} interval: "
            "Katz's, widened where the users' sessions vary together (cluster-robust, per user)",
            "an association, not proof of cause: users who turn a feature on may differ in other ways; when they "
            "differ in another attribute enough to move the answer beyond its interval, the headline gives the "
            "comparison within each value of that attribute (Mantel–Haenszel, on a sample of sessions)",
            "the per-user comparison favours the group whose users run the tool less often",
        ],
        chart=bar_chart(
            table,
            "group",
            "rate",
            title=f"{what.label} rate with and without {feature}",
            percent=True,
            error=("rate_lo", "rate_hi"),
            x_title="group",
            y_title=f"share of sessions with {what.label}",
        ),
        headline=headline(summary),
    )


def headline(s: dict[str, Any]) -> str:
    """The answer in words, from the summary alone."""
    using = f"{s['feature']}={s['value']}"
    label = s["outcome"]
    level = words.percent(s["confidence"])
    lo, hi, mid = s["relative_difference_lo"], s["relative_difference_hi"], s["relative_difference"]
    users = min(s["users_with"], s["users_without"])
    cases = min(s["outcomes_with"], s["outcomes_without"])
    rates = (
        f"{words.percent(s['rate_with'])} of sessions with {using} against {words.percent(s['rate_without'])} without"
    )
    if users < MIN_USERS or cases < MIN_CASES:
        side = "users" if users < MIN_USERS else f"sessions with {label}"
        return (
            f"Not enough data to say whether {using} changes how often {label} happens: one side has only "
            f"{words.count(users if users < MIN_USERS else cases)} {side} ({rates})."
        )
    interval = f"{level} interval: {words.often_range(lo, hi)}"
    adjusted = s.get("adjusted")
    within = within_note = ""
    if adjusted is not None:
        alo, amid, ahi = (
            adjusted["relative_difference_lo"],
            adjusted["relative_difference"],
            adjusted["relative_difference_hi"],
        )
        by = adjusted["attribute"]
        if alo <= 0 <= ahi:
            within = (
                f"within each value of {by}, the difference is between {words.often(alo)} and {words.often(ahi)} "
                f"({level} interval): no clear difference"
            )
        else:
            within = (
                f"within each value of {by}, they have it {words.often(amid)} ({level} interval: "
                f"{words.often_range(alo, ahi)})"
            )
        within_note = f"users with {using} differ in {by}, which matters too: "
    if lo <= 0 <= hi:
        text = (
            f"No clear difference: sessions with {using} have {label} about as often as the others ({rates}; the "
            f"difference is between {words.often(lo)} and {words.often(hi)}, {level} interval)."
        )
        if adjusted is not None and not adjusted["relative_difference_lo"] <= 0 <= adjusted["relative_difference_hi"]:
            text += f" But {within_note}{within}."
        return text
    text = f"Sessions with {using} have {label} {words.often(mid)} ({rates}; {interval})."
    if adjusted is not None:
        alo, ahi = adjusted["relative_difference_lo"], adjusted["relative_difference_hi"]
        if alo <= 0 <= ahi or (alo > 0) != (mid > 0):
            return f"{text} But {within_note}{within}."
        return (
            f"{text} Users with {using} differ in {adjusted['attribute']}; within each of its values: "
            f"{words.often(adjusted['relative_difference'])} ({level} interval: {words.often_range(alo, ahi)})."
        )
    caveat = " It is an association, not proof of cause: users who turn it on may differ in other ways."
    if s["design_effect"] > 2:
        caveat = (
            f" A few heavy users weigh on this (the interval is {s['design_effect'] ** 0.5:.1f}× as wide as if every "
            "session were independent), and it is an association, not proof of cause."
        )
    return text + caveat
