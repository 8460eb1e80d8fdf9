{#
    trim() of an expression, as DuckDB's trim (strips Unicode space separators, category Zs),
    but without copying the strings that have nothing to strip: trim() allocates a new string
    for every row, a cost per text column of the big event tables (docs/benchmark.md). Every Zs
    character other than ' ' is non-ASCII, so a string that has neither a
    leading nor a trailing ' ' and is all ASCII (octet length = character length) has nothing
    to strip; the others go through trim().
#}
{% macro trim_spaces(expression) -%}
    {{ return(adapter.dispatch('trim_spaces', 'crm_tags')(expression)) }}
{%- endmacro %}

{# PostgreSQL's trim() strips ' ' only: the Unicode space separators (Zs) are listed. #}
{% macro default__trim_spaces(expression) -%}
    regexp_replace({{ expression }}, '^[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+|[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+$', '', 'g')
{%- endmacro %}

{#- Spark: Java regular expressions know the Unicode classes -#}
{% macro spark__trim_spaces(expression) -%}
    regexp_replace({{ expression }}, '^\\p{Zs}+|\\p{Zs}+$', '')
{%- endmacro %}

{% macro duckdb__trim_spaces(expression) -%}
    case
        when {{ expression }} like ' %' or {{ expression }} like '% '
            or {{ byte_length(expression) }} <> length({{ expression }})
            then trim({{ expression }})
        else {{ expression }}
    end
{%- endmacro %}

{# Free-text code columns: trim, lower-case, collapse inner whitespace (RE2's \s, spelt out: PostgreSQL's
   \s also matches Unicode spaces); blank -> null. #}
{% macro normalize_code(expression) -%}
    nullif(lower({{ regexp_replace_all(trim_spaces(expression), "'[ \\t\\n\\f\\r]+'", "' '") }}), '')
{%- endmacro %}

{# Identity key for emails: trimmed and lower-cased (raw-sources.md, Identity). #}
{% macro normalize_email(expression) -%}
    nullif(lower({{ trim_spaces(expression) }}), '')
{%- endmacro %}

{# Keys: trimmed, blank -> null. #}
{% macro clean_key(expression) -%}
    nullif({{ trim_spaces(expression) }}, '')
{%- endmacro %}

{#
    A product category's code: the mapping's code for a text it lists (seeds/category_mapping.csv:
    synonyms, Chinese and English), else the text itself as a snake_case code ("Pet Supplies" ->
    pet_supplies): a category the mapping does not list stays its own category. `other` only
    for a text without a letter or digit. `text` is already normalised (normalize_code);
    `mapped_code` is the mapping's code for it (null when unlisted).
#}
{% macro category_code(text, mapped_code) -%}
    coalesce({{ mapped_code }}, {{ category_slug(text) }}, 'other')
{%- endmacro %}

{% macro category_slug(text) -%}
    {{ return(adapter.dispatch('category_slug', 'crm_tags')(text)) }}
{%- endmacro %}

{#
    PostgreSQL has no Unicode property classes: [:alnum:] (letters and digits by the database's
    LC_CTYPE, a UTF-8 one) plus the other numbers (Unicode No, Nl) DuckDB's \p{N} keeps:
    superscripts and fractions (mis-decoded Chinese text is full of ¾ and ²), number forms,
    circled numbers, CJK numerals.
#}
{% macro default__category_slug(text) -%}
    nullif(trim(regexp_replace({{ text }}, '[^[:alnum:]\u00b2\u00b3\u00b9\u00bc-\u00be\u2070-\u2079\u2080-\u2089\u2150-\u218b\u2460-\u249b\u24ea-\u24ff\u2776-\u2793\u3007\u3021-\u3029\u3038-\u303a\u3192-\u3195\u3220-\u3229\u3248-\u324f\u3251-\u325f\u3280-\u3289\u32b1-\u32bf]+', '_', 'g'), '_'), '')
{%- endmacro %}

{% macro duckdb__category_slug(text) -%}
    {#- RE2's Unicode classes: Chinese characters are letters and stay -#}
    nullif(trim(regexp_replace({{ text }}, '[^\p{L}\p{N}]+', '_', 'g'), '_'), '')
{%- endmacro %}


{#- Spark: Java's \p{L}\p{N} as RE2's; trim(BOTH ... FROM ...) for DuckDB's trim(x, '_') -#}
{% macro spark__category_slug(text) -%}
    nullif(trim(both '_' from regexp_replace({{ text }}, '[^\\p{L}\\p{N}]+', '_')), '')
{%- endmacro %}


{#
    regexp_replace of every match: DuckDB and PostgreSQL need the 'g' flag, Spark replaces
    every match (its fourth argument is a position). `pattern`, `replacement`: SQL literals.
#}
{% macro regexp_replace_all(expression, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'crm_tags')(expression, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}

{#- Spark's string literals take backslash escapes: the pattern's backslashes are doubled -#}
{% macro spark__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ pattern | replace('\\', '\\\\') }}, {{ replacement }})
{%- endmacro %}
