-- trim_spaces() (macros/text.sql) skips trim() for strings it judges to have nothing to strip:
-- it must give trim()'s result on every kind of edge a landing file can carry (ASCII and
-- Unicode spaces at either end, inner spaces, tabs, which trim() keeps, Chinese text, blanks).
with

samples as (
    select unnest([
        'AC001', ' AC001', 'AC001 ', '  AC001  ', 'A C', '', ' ', '   ', chr(9) || 'AC001' || chr(10),
        chr(12288) || 'AC001', 'AC001' || chr(12288), chr(160) || 'AC001', 'AC001' || chr(160),
        chr(8195) || 'x' || chr(8239), '上海', ' 上海 ', chr(12288) || '上海市' || chr(12288),
        chr(8203) || 'AC001', 'Ünïcödé ', null
    ]) as sample_text
)

select
    sample_text,
    trim(sample_text) as expected,
    {{ trim_spaces('sample_text') }} as actual
from samples
where {{ trim_spaces('sample_text') }} is distinct from trim(sample_text)
