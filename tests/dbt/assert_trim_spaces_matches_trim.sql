-- trim_spaces() (macros/text.sql) strips the Unicode space separators (Zs) at either end, as
-- DuckDB's trim() does, on every engine: DuckDB skips trim() for strings it judges to have
-- nothing to strip, PostgreSQL (whose trim() strips ' ' only) strips them by pattern. Every kind
-- of edge a landing file can carry: ASCII and Unicode spaces at either end, inner spaces, tabs
-- and a zero-width space (not Zs: kept), Chinese text, blanks.
with

samples (sample_text, expected) as (
    values
    ('AC001', 'AC001'),
    (' AC001', 'AC001'),
    ('AC001 ', 'AC001'),
    ('  AC001  ', 'AC001'),
    ('A C', 'A C'),
    ('', ''),
    (' ', ''),
    ('   ', ''),
    ({{ unicode_char(9) }} || 'AC001' || {{ unicode_char(10) }}, {{ unicode_char(9) }} || 'AC001' || {{ unicode_char(10) }}),
    ({{ unicode_char(12288) }} || 'AC001', 'AC001'),
    ('AC001' || {{ unicode_char(12288) }}, 'AC001'),
    ({{ unicode_char(160) }} || 'AC001', 'AC001'),
    ('AC001' || {{ unicode_char(160) }}, 'AC001'),
    ({{ unicode_char(8195) }} || 'x' || {{ unicode_char(8239) }}, 'x'),
    ('上海', '上海'),
    (' 上海 ', '上海'),
    ({{ unicode_char(12288) }} || '上海市' || {{ unicode_char(12288) }}, '上海市'),
    ({{ unicode_char(8203) }} || 'AC001', {{ unicode_char(8203) }} || 'AC001'),
    ('Ünïcödé ', 'Ünïcödé'),
    (null, null)
),

checked as (
    select
        sample_text,
        expected,
        {{ trim_spaces('sample_text') }} as actual,
        -- on DuckDB the shortcut must also give trim()'s result
        {{ 'trim(sample_text)' if target.type == 'duckdb' else 'expected' }} as trimmed
    from samples
)

select * from checked
where actual is distinct from expected or actual is distinct from trimmed
