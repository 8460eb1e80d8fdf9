"""Checkpoint tag_marts: what BI tools read (schema marts), against the catalog and over time.

- Every tag value is one of the catalog's codes (reference.tag_value_definitions), in
  marts.customer_tags, marts.contact_tags and each tag column of marts.customer_profile.
- Every non-deleted customer is in marts.customer_profile, and only those; every tag row
  belongs to a profiled customer.
- No tag value's share of customers swings suddenly against the last published run (blocking
  by default), and shares stay within the bounds a deployment set in expectations/gate.yml.
- The tag histories (marts.customer_tag_history, marts.contact_tag_history, docs/history.md):
  every period ends after it starts, a single-valued tag's periods (any value's periods) never
  overlap, and the periods valid on each tag's run date equal marts.customer_tags /
  marts.contact_tags, row for row.
- The segments' membership history (marts.segment_membership_history, docs/segments.md): every
  period ends after it starts, one (segment, customer)'s periods never overlap, and the periods
  valid on the members' run date equal marts.segment_members, row for row (holdout flag
  included).

The marts' structure (keys unique and set, one value per single-valued tag, every tag row with
its evidence) is tested by dbt next to the models (docs/quality-gate.md, "One home per check").
"""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from crm_tags.quality.distribution import HISTORY_TABLE, distribution_sql
from crm_tags.quality.spec import GateFacts, Query, Suite, Table, problem_suite, sql_string


def build(facts: GateFacts) -> list[Suite]:
    suites = [profile_values_suite(facts), values_in_catalog_suite(), profile_coverage_suite()]
    return (suites + distribution_suites(facts) + history_suites(facts)
            + segment_history_suites(facts))


def profile_values_suite(facts: GateFacts) -> Suite:
    """Each single-valued account-level tag's column in the profile holds catalog codes only."""
    expectations: list[gxe.Expectation] = []
    for tag_code, tag in facts.catalog.items():
        if tag.tag_level == "account" and not tag.is_multi_valued:
            values = facts.catalog_values.get(tag_code, [])
            expectations.append(gxe.ExpectColumnValuesToBeInSet(
                column=tag_code, value_set=values,
                description=f"marts.customer_profile: column {tag_code} holds only the "
                            f"catalog's codes ({', '.join(values)})."))
    return Suite("marts.customer_profile", Table("marts", "customer_profile"), expectations)


def values_in_catalog_suite() -> Suite:
    return problem_suite(
        "tag_marts.values_in_catalog",
        """
        with assigned as (
            select 'marts.customer_tags' as mart, customer_id as holder, tag_code, tag_value
            from marts.customer_tags
            union all
            select 'marts.contact_tags', contact_id, tag_code, tag_value from marts.contact_tags
        ),
        checked as (
            select assigned.mart, assigned.tag_code, assigned.tag_value,
                count(*) as rows_held, min(assigned.holder) as example,
                bool_or(definitions.tag_value is null) as outside
            from assigned
            left join reference.tag_value_definitions as definitions
                on assigned.tag_code = definitions.tag_code
                and assigned.tag_value = definitions.tag_value
            group by assigned.mart, assigned.tag_code, assigned.tag_value
        )
        select mart, tag_code, tag_value, case when outside then printf(
            '%s: %s = ''%s'' is not one of the catalog''s codes (%d rows, e.g. %s)',
            mart, tag_code, tag_value, rows_held, example) end as problem
        from checked
        """,
        "Every tag value in the marts is one of the catalog's codes "
        "(reference.tag_value_definitions, from the catalog).",
    )


def profile_coverage_suite() -> Suite:
    return problem_suite(
        "tag_marts.every_customer_profiled",
        """
        with profile as (
            select customer_id, count(*) as rows_held from marts.customer_profile
            group by customer_id
        ),
        live as (
            select customer_id, is_deleted from core.dim_customers
        )
        select coalesce(live.customer_id, profile.customer_id) as customer_id, case
            when profile.customer_id is null and not live.is_deleted then printf(
                'customer %s is a live CRM account but missing from marts.customer_profile',
                live.customer_id)
            when live.customer_id is null then printf(
                'marts.customer_profile holds %s, which is not a CRM account', profile.customer_id)
            when live.is_deleted and profile.customer_id is not null then printf(
                'marts.customer_profile holds %s, a deleted account', profile.customer_id)
            end as problem
        from live
        full outer join profile on live.customer_id = profile.customer_id
        union all
        select tags.customer_id, case when profile.customer_id is null then printf(
            '%s: customer %s holds %s = %s but is not in marts.customer_profile '
            || '(deleted or unknown)', tags.mart, tags.customer_id, tags.tag_code, tags.tag_value)
            end
        from (
            select 'marts.customer_tags' as mart, customer_id, tag_code, tag_value
            from marts.customer_tags
            union all
            select 'marts.contact_tags', customer_id, tag_code, tag_value from marts.contact_tags
        ) as tags
        left join profile on tags.customer_id = profile.customer_id
        """,
        "Every non-deleted customer is in marts.customer_profile, no deleted or unknown one is, "
        "and every tag row belongs to a profiled customer.",
    )


def distribution_suites(facts: GateFacts) -> list[Suite]:
    """The swing check against the last published run (every shop, from its second run on) and
    the bounds a deployment opted into; a check that cannot say anything is skipped with a note
    saying why."""
    policy = facts.policy.get("distribution") or {}
    minimum = int(policy.get("min_customers", 0))
    few = ("shares of so few customers move by chance; distribution.min_customers = "
           f"{minimum} in expectations/gate.yml")
    suites = []
    bounds = policy.get("bounds") or {}
    if bounds and facts.customers < minimum:
        facts.notes.append(f"tag distribution bounds not checked: {facts.customers} customers "
                           f"({few})")
    elif bounds:
        suites.append(distribution_bounds_suite(facts, bounds))
    previous = facts.previous
    if previous is None:
        facts.notes.append(
            "tag distribution swing not checked: this warehouse has no published run to compare "
            "with yet (its first run); this run's distribution is recorded when it is published, "
            "and the next run is compared with it")
    elif facts.customers < minimum:
        facts.notes.append(f"tag distribution swing not checked: {facts.customers} customers "
                           f"({few})")
    elif previous.customers < minimum:
        facts.notes.append(
            f"tag distribution swing not checked: the published run it would be compared with "
            f"({previous.run_id}) had {previous.customers} customers ({few})")
    else:
        suites.append(distribution_swing_suite(facts, policy.get("swing") or {}))
        new = sorted(set(_tag_keys(facts)) - previous.tag_keys)
        new_tags = sorted({key.split(":")[0] for key in new if key.endswith(":*")})
        new_values = [key for key in new if key.split(":")[0] not in new_tags]
        if new_tags:
            facts.notes.append(
                f"tag distribution swing: {', '.join(new_tags)} not compared, new since the "
                f"published run {previous.run_id}; compared from the next run on")
        if new_values:
            facts.notes.append(
                f"tag distribution swing: the values {', '.join(new_values)} not compared, new "
                f"in the catalog since the published run {previous.run_id}")
    return suites


def _tag_keys(facts: GateFacts) -> list[str]:
    """'tag_code:tag_value' of every account-level catalog value, and 'tag_code:*' (holding any
    value of the tag): the rows of distribution_sql()."""
    keys = []
    for tag_code, tag in facts.catalog.items():
        if tag.tag_level == "account":
            keys += [f"{tag_code}:{value}" for value in facts.catalog_values.get(tag_code, [])]
            keys.append(f"{tag_code}:*")
    return keys


def _bound_problems(facts: GateFacts, bounds: dict) -> list[str]:
    """What is wrong with distribution.bounds in expectations/gate.yml, in sentences."""
    known = set(_tag_keys(facts))
    problems = []
    if not isinstance(bounds, dict):
        return ["distribution.bounds: must map tag codes to their values' bounds"]
    for tag_code, values in bounds.items():
        if not isinstance(values, dict):
            problems.append(f"distribution.bounds.{tag_code}: must map values (or '*') to "
                            "{min: share, max: share}")
            continue
        for tag_value, bound in values.items():
            where = f"distribution.bounds.{tag_code}.{tag_value!s}"
            if f"{tag_code}:{tag_value}" not in known:
                problems.append(f"{where}: {tag_code} = {tag_value} is not an account-level tag "
                                "value of the catalog (nor '*', any value of the tag)")
            elif (not isinstance(bound, dict) or not bound or set(bound) - {"min", "max"}
                  or not all(isinstance(v, int | float) and 0 <= v <= 1 for v in bound.values())):
                problems.append(f"{where}: must be {{min: share, max: share}} (either may be left "
                                f"out; shares between 0 and 1), not {bound!r}")
    return problems


def distribution_bounds_suite(facts: GateFacts, bounds: dict) -> Suite:
    """One expectation per bounded tag value: its share of customers (GX observes the share,
    so Data Docs show it against the bounds whether or not they hold)."""
    problems = _bound_problems(facts, bounds)
    if problems:
        # a bound that cannot be checked must not pass silently: the suite fails, saying why
        rows = " union all ".join(f"select {sql_string(p)} as problem" for p in problems)
        return problem_suite("tag_marts.distribution_bounds", rows,
                             "The distribution bounds in expectations/gate.yml can be checked.")
    expectations: list[gxe.Expectation] = []
    for tag_code, values in bounds.items():
        for tag_value, bound in values.items():
            low, high = bound.get("min"), bound.get("max")
            label = f"customers holding any {tag_code}" if tag_value == "*" else \
                f"customers with {tag_code} = {tag_value}"
            expected = (f"between {low:.1%} and {high:.1%}" if low is not None and high is not None
                        else f"at least {low:.1%}" if low is not None else f"at most {high:.1%}")
            expectations.append(gxe.ExpectColumnMaxToBeBetween(
                column="share", min_value=low, max_value=high,
                row_condition=Column("tag_key") == f"{tag_code}:{tag_value}",
                meta={"unit": "share"},
                description=f"The share of {label} is {expected} (expectations/gate.yml).",
            ))
    return Suite("tag_marts.distribution_bounds", Query(distribution_sql()), expectations)


def distribution_swing_suite(facts: GateFacts, swing: dict) -> Suite:
    """No tag value's share moves by more than the limit against the last published run.
    Values recorded then and still in the catalog are compared (new ones get a note)."""
    assert facts.previous is not None
    limit = float(swing.get("limit", 0.10))
    per_tag = {tag: float(value) for tag, value in (swing.get("per_tag") or {}).items()}
    limit_sql = ("case current_run.tag_code " + " ".join(
        f"when {sql_string(tag)} then {value}" for tag, value in per_tag.items())
        + f" else {limit} end") if per_tag else str(limit)
    per_tag_text = "; per tag: " + ", ".join(
        f"{tag} {value:.0%}" for tag, value in per_tag.items()) if per_tag else ""
    return problem_suite(
        "tag_marts.distribution_swing",
        f"""
        with current_run as ({distribution_sql()}),
        previous_run as (
            select tag_code, tag_value, share, as_of_date from {HISTORY_TABLE}
            where run_id = {sql_string(facts.previous.run_id)}
        ),
        compared as (
            select current_run.tag_key, current_run.share, {limit_sql} as limit_share,
                previous_run.share as previous_share, previous_run.as_of_date
            from current_run
            inner join previous_run
                on current_run.tag_code = previous_run.tag_code
                and current_run.tag_value = previous_run.tag_value
        )
        select tag_key, case when abs(share - previous_share) > limit_share then printf(
            '%s moved from %.1f%% of customers (published run of %s) to %.1f%% (now): more '
            || 'than %.0f percentage points', tag_key, 100 * previous_share,
            coalesce(cast(as_of_date as varchar), 'unknown date'), 100 * share,
            cast(100 * limit_share as double precision))
            end as problem
        from compared
        """,
        "No tag value's share of customers swings suddenly against the last published run "
        f"(limit {limit:.0%} points{per_tag_text}; expectations/gate.yml).",
        severity=swing.get("severity", "critical")
    )


# The histories and the marts they keep: (history, its holder column, the mart it keeps).
HISTORIES = [("marts.customer_tag_history", "customer_id", "marts.customer_tags"),
             ("marts.contact_tag_history", "contact_id", "marts.contact_tags")]


def history_suites(facts: GateFacts) -> list[Suite]:
    missing = [history for history, _, _ in HISTORIES if history not in facts.relations]
    if missing:
        # the tag history is not built on every engine yet (docs/engines.md)
        facts.notes.append(f"tag history not checked: {', '.join(missing)} not built on "
                           f"{facts.engine} (docs/engines.md)")
        return []
    return [history_periods_suite(), history_matches_tags_suite()]


def history_periods_suite() -> Suite:
    """Periods ordered, and no overlap where one value at a time holds: any two periods of a
    single-valued tag's holder, or of one value of a multi-valued tag."""
    checks = " union all ".join(f"""
        select '{history}' as history, {holder} as holder, tag_code, tag_value, valid_from,
            valid_to, previous_value, previous_to
        from (
            select history.*, definitions.is_multi_valued,
                lag(tag_value) over holder_tag as previous_value,
                lag(coalesce(valid_to, date '9999-12-31')) over holder_tag as previous_to
            from {history} as history
            inner join reference.tag_definitions as definitions using (tag_code)
            window holder_tag as (
                partition by {holder}, tag_code,
                    case when definitions.is_multi_valued then tag_value end
                order by valid_from, tag_value
            )
        ) as periods""" for history, holder, _ in HISTORIES)
    return problem_suite(
        "tag_marts.history_periods",
        f"""
        select history, holder, tag_code, case
            when valid_to is not null and valid_to <= valid_from then printf(
                '%s: %s %s = %s ends on %s, not after it starts (%s)',
                history, holder, tag_code, tag_value, valid_to, valid_from)
            when previous_to > valid_from then printf(
                '%s: %s %s = %s from %s overlaps its period of %s (until %s)',
                history, holder, tag_code, tag_value, valid_from, previous_value,
                case when previous_to = date '9999-12-31' then 'open'
                    else cast(previous_to as varchar) end)
            end as problem
        from ({checks}) as checks
        """,
        "The tag histories' periods end after they start, and a single-valued tag's periods "
        "(or one value's periods of a multi-valued tag) never overlap.",
    )


def history_matches_tags_suite() -> Suite:
    """The periods valid on each tag's run date (its as_of_date in the mart) are the mart's
    rows: the history keeps what the marts hold, and holds nothing else on that date.

    Row for row as `except all` both ways, written as one grouping: each (tag, value, holder)
    counts +1 per mart row and -1 per valid period, and a surplus either way is that many rows
    missing on the other side. A grouping DuckDB spills to disk: the two `except all` over the
    40 M tag rows at 4M customers failed within the 6GB memory_limit, the grouping passes
    (docs/benchmark.md, "How far DuckDB goes")."""
    checks = " union all ".join(f"""
        select '{history}' as history, tag_code, tag_value, holder,
            case when sum(copies) > 0 then 'not in the history' else 'not in {mart}' end as side,
            abs(sum(copies)) as missing
        from (
            select tag_code, tag_value, {holder} as holder, 1 as copies from {mart}
            union all
            select history.tag_code, history.tag_value, history.{holder}, -1
            from {history} as history
            inner join (select distinct tag_code, as_of_date from {mart}) as dated
                on history.tag_code = dated.tag_code
                and history.valid_from <= dated.as_of_date
                and (history.valid_to is null or history.valid_to > dated.as_of_date)
        ) as both_sides
        group by tag_code, tag_value, holder
        having sum(copies) <> 0""" for history, holder, mart in HISTORIES)
    return problem_suite(
        "tag_marts.history_matches_tags",
        f"""
        select history, tag_code, printf(
            '%s: %d rows of %s on the tag''s run date are %s, e.g. %s = %s',
            history, cast(sum(missing) as bigint), tag_code, side, min(holder), min(tag_value))
            as problem
        from ({checks}) as checks
        group by history, tag_code, side
        """,
        "The tag history periods valid on each tag's run date equal the tag marts "
        "(marts.customer_tags, marts.contact_tags), row for row.",
    )


def segment_history_suites(facts: GateFacts) -> list[Suite]:
    """The segments' membership history: periods ordered and not overlapping, and the periods
    valid on the run date of marts.segment_members are its rows (holdout flag included)."""
    if "marts.segment_membership_history" not in facts.relations:
        facts.notes.append("segment history not checked: marts.segment_membership_history is "
                           f"not built on {facts.engine}")
        return []
    periods = problem_suite(
        "tag_marts.segment_history_periods",
        """
        select segment_code, customer_id, case
            when valid_to is not null and valid_to <= valid_from then printf(
                'marts.segment_membership_history: %s in %s ends on %s, not after it starts '
                || '(%s)', customer_id, segment_code, valid_to, valid_from)
            when previous_to > valid_from then printf(
                'marts.segment_membership_history: %s in %s from %s overlaps its period '
                || 'from %s (until %s)', customer_id, segment_code, valid_from, previous_from,
                case when previous_to = date '9999-12-31' then 'open'
                    else cast(previous_to as varchar) end)
            end as problem
        from (
            select *,
                lag(valid_from) over member as previous_from,
                lag(coalesce(valid_to, date '9999-12-31')) over member as previous_to
            from marts.segment_membership_history
            window member as (partition by segment_code, customer_id order by valid_from)
        ) as periods
        """,
        "The segment membership history's periods end after they start, and one customer's "
        "periods in a segment (holdout or not) never overlap.",
    )
    # the members' own run date (a build that left the segments out keeps an earlier one)
    dated = (f"select coalesce(max(as_of_date), {facts.run_date_sql}) as as_of_date "
             "from marts.segment_members")
    held = f"""
        select history.segment_code, history.customer_id, history.is_holdout
        from marts.segment_membership_history as history
        inner join ({dated}) as dated
            on history.valid_from <= dated.as_of_date
            and (history.valid_to is null or history.valid_to > dated.as_of_date)"""
    members = "select segment_code, customer_id, is_holdout from marts.segment_members"
    matches = problem_suite(
        "tag_marts.segment_history_matches_members",
        f"""
        select segment_code, printf(
            'marts.segment_membership_history: %d rows of %s on the run date are %s, e.g. %s '
            || '(holdout %s)', count(*), segment_code, side, min(customer_id),
            cast(min(case when is_holdout then 1 else 0 end) = 1 as varchar)) as problem
        from (
            select *, 'not in the history' as side
            from ({members} except all {held}) as missing_in_history
            union all
            select *, 'not in marts.segment_members' as side
            from ({held} except all {members}) as missing_in_members
        ) as differences
        group by segment_code, side
        """,
        "The segment membership history's periods valid on the run date equal "
        "marts.segment_members, row for row.",
    )
    return [periods, matches]
