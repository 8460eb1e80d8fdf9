-- Stability of each account-level tag since its previous run: of the customers holding the tag
-- at its latest run (marts.customer_tag_history, valid on that date), the share that held it at
-- the tag's previous run (marts.tag_runs) with other values. A customer who newly holds the tag
-- is not counted as changed; null when the tag has no previous run.
with

history as (
    select
        customer_id,
        tag_code,
        tag_value,
        valid_from,
        valid_to
    from {{ ref('customer_tag_history') }}
),

runs as (
    select
        tag_code,
        as_of_date
    from {{ ref('tag_runs') }}
    where as_of_date <= {{ as_of_date() }}
),

latest as (
    select
        tag_code,
        max(as_of_date) as latest_run
    from runs
    group by tag_code
),

run_pairs as (
    select
        latest.tag_code,
        latest.latest_run,
        max(runs.as_of_date) as previous_run
    from latest
    left join runs on latest.tag_code = runs.tag_code and latest.latest_run > runs.as_of_date
    group by latest.tag_code, latest.latest_run
),

now_values as (
    select
        history.customer_id,
        history.tag_code,
        history.tag_value
    from history
    inner join run_pairs on history.tag_code = run_pairs.tag_code
    where {{ period_valid_on('history', 'run_pairs.latest_run') }}
),

then_values as (
    select
        history.customer_id,
        history.tag_code,
        history.tag_value
    from history
    inner join run_pairs on history.tag_code = run_pairs.tag_code
    where {{ period_valid_on('history', 'run_pairs.previous_run') }}
),

now_holders as (
    select distinct
        customer_id,
        tag_code
    from now_values
),

then_holders as (
    select distinct
        customer_id,
        tag_code
    from then_values
),

-- a value held at one run and not the other, for a customer holding the tag at both
differences as (
    select
        coalesce(now_values.customer_id, then_values.customer_id) as customer_id,
        coalesce(now_values.tag_code, then_values.tag_code) as tag_code
    from now_values
    full outer join then_values
        on
            now_values.customer_id = then_values.customer_id
            and now_values.tag_code = then_values.tag_code
            and now_values.tag_value = then_values.tag_value
    where now_values.customer_id is null or then_values.customer_id is null
),

changed as (
    select
        differences.tag_code,
        count(distinct differences.customer_id) as changed_holders
    from differences
    inner join now_holders
        on differences.customer_id = now_holders.customer_id and differences.tag_code = now_holders.tag_code
    inner join then_holders
        on differences.customer_id = then_holders.customer_id and differences.tag_code = then_holders.tag_code
    group by differences.tag_code
),

holders as (
    select
        tag_code,
        count(*) as holders
    from now_holders
    group by tag_code
),

final as (
    select
        run_pairs.tag_code,
        run_pairs.latest_run,
        run_pairs.previous_run,
        coalesce(changed.changed_holders, 0) as changed_holders,
        case
            when run_pairs.previous_run is not null and holders.holders is not null
                then coalesce({{ safe_share('coalesce(changed.changed_holders, 0)', 'holders.holders') }}, 0)
        end as changed_share
    from run_pairs
    left join changed on run_pairs.tag_code = changed.tag_code
    left join holders on run_pairs.tag_code = holders.tag_code
)

select * from final
