{#
    Histories kept as periods of run dates (docs/history.md): segment membership
    (marts.segment_membership_history), account tags (marts.customer_tag_history) and contact
    tags (marts.contact_tag_history). One home for the period logic.

    A period is one row: the item's columns, valid_from (the first run date of the period) and
    valid_to (the first run date without it, exclusive; null while it holds). What a history
    held on a date D is
        valid_from <= D and (valid_to is null or valid_to > D)
    Only changes are stored: an item that holds for a year is one row. period_valid_on(period,
    date) writes that predicate: every SQL that reads a history as of a date uses it.

    period_history(members, runs, scope, key, item, payload, computed)
        The CTEs, ending with `final`, of an incremental history model that writes this run's
        date into the history: a member the history did not hold on the date enters (joining
        the period that ends on the date, or the one that starts at the scope's next run date,
        if any); a held item that is no longer a member ends on the date (and starts again at
        the scope's next run date when it held there). Re-running a date therefore changes
        nothing, and dates may be run in any order.
        members   CTE: this run's items (key + item + payload columns)
        runs      relation with (scope, as_of_date): every run date of each scope, this run's
                  included (segment_runs, tag_runs)
        scope     the column whose run dates bound the periods (segment_code, tag_code)
        key       the model's unique_key columns (scope included): the rows replaced together
        item      the further columns telling items of one key apart (is_holdout, tag_value)
        payload   columns carried along, not compared (evidence: as computed when the period
                  started)
        computed  optional list of the scopes this run computed (computed_tag_codes): items of
                  other scopes are left as they are (a weekly tag on a daily run). Without it,
                  every held item that is not a member ends (a segment removed from the file).
        Only the changed keys are returned, with all their periods; the replace_periods
        strategy replaces their stored periods with these. A key left with no period is
        returned as one row with a null valid_from. A first (non-incremental) build starts
        every member's period on the run date.

    replace_periods (a custom incremental strategy)
        For every unique_key the model returns, its stored rows are replaced by the returned
        ones; a returned row with a null valid_from stands for a key left with no row (it
        deletes, and is not inserted). `delete ... using` and `insert ... select` are SQL that
        DuckDB and PostgreSQL both accept: one macro for every engine (dbt finds
        get_incremental_replace_periods_sql in the project whatever the adapter).
#}


{# The periods of a history valid on `date`: `period` is the history's alias (or none). #}
{% macro period_valid_on(period, date) -%}
    {%- set p = (period ~ '.') if period else '' -%}
    ({{ p }}valid_from <= {{ date }} and ({{ p }}valid_to is null or {{ p }}valid_to > {{ date }}))
{%- endmacro %}


{% macro _history_columns(relation, columns) -%}
    {%- for column in columns -%}
        {{ relation ~ '.' if relation }}{{ column }}{{ ', ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{% macro _history_match(left, right, columns) -%}
    {%- for column in columns -%}
        {{ left }}.{{ column }} = {{ right }}.{{ column }}{{ ' and ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{% macro period_history(members, runs, scope, key, item, payload=[], computed=none) -%}
    {%- set ident = key + item -%}
    {%- set row = ident + payload -%}
    {%- set first = key[0] -%}
    {%- set run_date = as_of_date() -%}
{% if is_incremental() %}
{%- do check_history_columns(this, row + ['valid_from', 'valid_to']) %}
next_runs as (
    -- each scope's first run date after this one (none when this is its latest run)
    select
        {{ scope }},
        min(as_of_date) as next_run_date
    from {{ runs }}
    where as_of_date > {{ run_date }}
    group by {{ scope }}
),

previous as (
    select
        {{ _history_columns(none, row) }},
        valid_from,
        valid_to
    from {{ this }}
),

held as (
    -- what the history holds on this run date, of the scopes this run computed
    select previous.*
    from previous
    where {{ period_valid_on('previous', run_date) }}
        {%- if computed is not none and computed | length == 0 %}
        and 1 = 0
        {%- elif computed is not none %}
        and previous.{{ scope }} in ({% for code in computed %}'{{ code }}'{{ ', ' if not loop.last }}{% endfor %})
        {%- endif %}
),

entering as (
    select {{ _history_columns(members, row) }}
    from {{ members }}
    left join held on {{ _history_match(members, 'held', ident) }}
    where held.{{ first }} is null
),

exiting as (
    select held.*
    from held
    left join {{ members }} on {{ _history_match('held', members, ident) }}
    where {{ members }}.{{ first }} is null
),

exit_pieces as (
    -- the part of an exiting period before this run date ...
    select
        {{ _history_columns(none, row) }},
        valid_from,
        {{ run_date }} as valid_to
    from exiting
    where valid_from < {{ run_date }}
    union all
    -- ... and the part from the scope's next run date on, when the period held there
    select
        {{ _history_columns('exiting', row) }},
        next_runs.next_run_date as valid_from,
        exiting.valid_to
    from exiting
    inner join next_runs on exiting.{{ scope }} = next_runs.{{ scope }}
    where exiting.valid_to is null or exiting.valid_to > next_runs.next_run_date
),

ending_here as (
    -- periods of entering items that end on this run date: the new period continues them
    select previous.*
    from previous
    inner join entering on {{ _history_match('previous', 'entering', ident) }}
    where previous.valid_to = {{ run_date }}
),

starting_next as (
    -- periods of entering items that start at the next run date: the new period runs into them
    select previous.*
    from previous
    inner join entering on {{ _history_match('previous', 'entering', ident) }}
    inner join next_runs
        on previous.{{ scope }} = next_runs.{{ scope }}
            and previous.valid_from = next_runs.next_run_date
),

enter_pieces as (
    select
        {{ _history_columns('entering', ident) }},
        {%- for column in payload %}
        case
            when ending_here.valid_from is not null then ending_here.{{ column }}
            else entering.{{ column }}
        end as {{ column }},
        {%- endfor %}
        coalesce(ending_here.valid_from, {{ run_date }}) as valid_from,
        case
            when starting_next.valid_from is not null then starting_next.valid_to
            else next_runs.next_run_date
        end as valid_to
    from entering
    left join ending_here on {{ _history_match('entering', 'ending_here', ident) }}
    left join starting_next on {{ _history_match('entering', 'starting_next', ident) }}
    left join next_runs on entering.{{ scope }} = next_runs.{{ scope }}
),

replaced as (
    select {{ _history_columns(none, ident) }}, valid_from from exiting
    union all
    select {{ _history_columns(none, ident) }}, valid_from from ending_here
    union all
    select {{ _history_columns(none, ident) }}, valid_from from starting_next
),

changed as (
    select distinct {{ _history_columns(none, key) }}
    from (
        select {{ _history_columns(none, key) }} from entering
        union all
        select {{ _history_columns(none, key) }} from exiting
    ) as changed_keys
),

kept as (
    -- the changed keys' other periods stay as they are
    select previous.*
    from previous
    inner join changed on {{ _history_match('previous', 'changed', key) }}
    left join replaced
        on {{ _history_match('previous', 'replaced', ident) }}
            and previous.valid_from = replaced.valid_from
    where replaced.{{ first }} is null
),

periods as (
    select * from kept
    union all
    select * from exit_pieces
    union all
    select * from enter_pieces
),

final as (
    select * from periods
    union all
    -- a changed key left with no period (its columns null): deleted by replace_periods
    select
        {{ _history_columns('changed', key) }},
        {{ _history_columns('periods', item + payload) }},
        periods.valid_from,
        periods.valid_to
    from changed
    left join periods on {{ _history_match('changed', 'periods', key) }}
    where periods.{{ first }} is null
)
{% else %}
final as (
    select
        {{ _history_columns(none, row) }},
        {{ run_date }} as valid_from,
        cast(null as date) as valid_to
    from {{ members }}
)
{% endif %}
{%- endmacro %}

{#
    A history table written by another version of the project (a column missing) stops the run
    naming the table: a history is never rebuilt silently (full_refresh=false keeps it), so it
    needs a migration, or dropping the table on purpose.
#}
{% macro check_history_columns(relation, expected) -%}
    {%- if execute -%}
        {%- set found = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
        {%- set missing = [] -%}
        {%- for column in expected if column | lower not in found -%}
            {%- do missing.append(column) -%}
        {%- endfor -%}
        {%- if missing -%}
            {%- do exceptions.raise_compiler_error(
                "History table " ~ relation ~ " was written by another version of the project: "
                ~ "it lacks the column(s) " ~ missing | join(', ') ~ " (it has " ~ found | join(', ')
                ~ "). A history is never rebuilt silently: migrate the table to the new columns, "
                ~ "or drop it to start its history over (docs/history.md).") -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro get_incremental_replace_periods_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set keys = arg_dict['unique_key'] -%}
    {%- set keys = [keys] if keys is string else keys -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} as replaced_target
    using {{ source }} as replacing
    where {% for key in keys %}replaced_target.{{ key }} = replacing.{{ key }}{{ ' and ' if not loop.last }}{% endfor %};

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }} where valid_from is not null
{%- endmacro %}

{#
    computed_tag_codes(level): the catalog's tags at `level` ('account', 'contact') whose model
    this dbt invocation builds (dbt's selected_resources). A cadence's job selects only its
    tags: the histories and tag_runs then change only for them (a weekly tag's history changes
    only on the runs that compute it). Outside execution (parsing), every tag. A build that
    runs as several dbt invocations names the tag models it builds in var computed_tag_models
    or in the environment variable CRM_COMPUTED_TAG_MODELS (* for all).
#}
{% macro computed_tag_codes(level) -%}
    {%- set codes = [] -%}
    {#- a build run as several dbt invocations (the waves around the Python models on
        PostgreSQL, crm_tags.python_on_host) names the tag models the whole build computes -#}
    {%- set built = var('computed_tag_models', none) -%}
    {#- or in $CRM_COMPUTED_TAG_MODELS (comma-separated, or * for every model of the project),
        read only while a node runs, so it keeps dbt's partial parsing (a changed --vars does
        not) -#}
    {%- if built is none and execute and env_var('CRM_COMPUTED_TAG_MODELS', '') -%}
        {%- set listed = env_var('CRM_COMPUTED_TAG_MODELS') -%}
        {%- if listed == '*' -%}
            {%- set built = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
                | map(attribute='name') | list -%}
        {%- else -%}
            {%- set built = listed.split(',') -%}
        {%- endif -%}
    {%- endif -%}
    {%- for tag in catalog_tags_at_level(level) -%}
        {%- if not execute
            or (built is not none and tag.model in built)
            or (built is none and ('model.' ~ project_name ~ '.' ~ tag.model) in selected_resources) -%}
            {%- do codes.append(tag.code) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(codes) }}
{%- endmacro %}

{# `column in (the computed tags)`, false when none is computed. #}
{% macro is_computed_tag(column, level) -%}
    {%- set codes = computed_tag_codes(level) -%}
    {%- if codes -%}
        {{ column }} in ({% for code in codes %}'{{ code }}'{{ ', ' if not loop.last }}{% endfor %})
    {%- else -%}
        1 = 0
    {%- endif -%}
{%- endmacro %}
