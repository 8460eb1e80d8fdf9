"""`crm-tags report [--out DIR]`: the tag-health report for data stewards, one self-contained
HTML page (inline SVG, no script, no network) from the published warehouse: the flags with
their reasons, coverage and value mix per tag, trends over the run dates, the transition flow
of lifecycle_stage and customer_grade (when the tag history is in the warehouse), the overlap
heatmap and the LTV calibration plot. Labels are the catalog's, Chinese and English.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
from pathlib import Path

import duckdb

from crm_tags.build import DEFAULT_WAREHOUSE

REPORT_NAME = "tag-health-report.html"
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac"]


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(con.execute("select count(*) from information_schema.tables where "
                            "table_schema = ? and table_name = ?", [schema, name]).fetchone()[0])


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _bilingual(zh: object, en: object) -> str:
    return f"{esc(zh)} / {esc(en)}" if zh != en else esc(en)


# --- plots (inline SVG) ------------------------------------------------------------------------

def coverage_chart(tags: list[dict]) -> str:
    """Horizontal bars: each tag's coverage, stacked by value share, flagged tags in red text."""
    row_h, left, width = 22, 260, 520
    height = row_h * len(tags) + 30
    parts = [(f'<svg class="plot" data-plot="coverage" width="{left + width + 80}" '
             f'height="{height}" role="img" aria-label="coverage per tag">')]
    for i, tag in enumerate(tags):
        y = 10 + i * row_h
        color = "#c0392b" if tag["flags"] else "#222"
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" fill="{color}" '
                     f'font-size="12">{_bilingual(tag["label_zh"], tag["label_en"])}</text>')
        x = left
        for j, value in enumerate(tag["values"]):
            w = width * float(value["coverage"] or 0)
            if w <= 0:
                continue
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" '
                         f'fill="{PALETTE[j % len(PALETTE)]}"><title>{esc(tag["tag_code"])} = '
                         f'{_bilingual(value["label_zh"], value["label_en"])}: '
                         f'{value["holders"]:,} ({float(value["coverage"] or 0):.1%})</title></rect>')
            x += w
        parts.append(f'<text x="{left + width + 6}" y="{y + 14}" font-size="12">'
                     f'{float(tag["coverage"] or 0):.1%}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="5" y2="{height - 15}" stroke="#888"/>')
    parts.append("</svg>")
    return "".join(parts)


def trend_chart(series: dict[str, list[tuple[str, float]]]) -> str:
    """Coverage of each tag over the run dates (one line per tag)."""
    dates = sorted({d for points in series.values() for d, _ in points})
    width, height, left, bottom = 760, 260, 50, 30
    parts = [(f'<svg class="plot" data-plot="trends" width="{width + 200}" height="{height + bottom}" '
             'role="img" aria-label="coverage over run dates">')]
    parts.append(f'<line x1="{left}" x2="{left}" y1="10" y2="{height}" stroke="#888"/>'
                 f'<line x1="{left}" x2="{width}" y1="{height}" y2="{height}" stroke="#888"/>')
    for tick in (0, 0.5, 1):
        y = height - tick * (height - 10)
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" font-size="11">'
                     f'{tick:.0%}</text>')

    def xpos(d: str) -> float:
        return left + 10 + (width - left - 20) * (dates.index(d) / max(len(dates) - 1, 1))

    for d in dates:
        parts.append(f'<text x="{xpos(d):.1f}" y="{height + 18}" text-anchor="middle" '
                     f'font-size="11">{esc(d)}</text>')
    for i, (tag, points) in enumerate(sorted(series.items())):
        color = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{xpos(d):.1f},{height - v * (height - 10):.1f}" for d, v in points)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2">'
                     f'<title>{esc(tag)}</title></polyline>')
        for d, v in points:
            parts.append(f'<circle cx="{xpos(d):.1f}" cy="{height - v * (height - 10):.1f}" r="3" '
                         f'fill="{color}"/>')
        parts.append(f'<text x="{width + 10}" y="{20 + i * 13}" font-size="11" fill="{color}">'
                     f'{esc(tag)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def heatmap(tags: list[str], cells: dict[tuple[str, str], float]) -> str:
    """The overlap heatmap: Jaccard index of the holders of each pair of tags."""
    size, left, top = 20, 170, 170
    n = len(tags)
    parts = [(f'<svg class="plot" data-plot="overlap" width="{left + n * size + 20}" '
             f'height="{top + n * size + 20}" role="img" aria-label="overlap heatmap">')]
    for i, tag in enumerate(tags):
        parts.append(f'<text x="{left - 4}" y="{top + i * size + 14}" text-anchor="end" '
                     f'font-size="11">{esc(tag)}</text>')
        x = left + i * size + 14
        parts.append(f'<text x="{x}" y="{top - 4}" font-size="11" '
                     f'transform="rotate(-60 {x} {top - 4})">{esc(tag)}</text>')
        for j, other in enumerate(tags):
            value = 1.0 if tag == other else cells.get((tag, other), 0.0)
            shade = int(255 - 200 * value)
            parts.append(f'<rect x="{left + j * size}" y="{top + i * size}" width="{size - 1}" '
                         f'height="{size - 1}" fill="rgb({shade},{shade},255)"><title>{esc(tag)} / '
                         f'{esc(other)}: Jaccard {value:.2f}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def calibration_chart(rows: list[dict]) -> str:
    """Predicted and actual repeat purchases per customer in the hold-out, per frequency bucket
    (Fader, Hardie & Lee 2005, figure 4)."""
    width, height, left = 560, 240, 50
    top_value = max([float(r["predicted_per_customer"] or 0) for r in rows]
                    + [float(r["actual_per_customer"] or 0) for r in rows] + [1e-9])
    parts = [(f'<svg class="plot" data-plot="calibration" width="{width + 160}" height="{height + 40}" '
             'role="img" aria-label="LTV calibration">')]
    parts.append(f'<line x1="{left}" x2="{left}" y1="10" y2="{height}" stroke="#888"/>'
                 f'<line x1="{left}" x2="{width}" y1="{height}" y2="{height}" stroke="#888"/>')
    step = (width - left - 20) / max(len(rows) - 1, 1)
    for name, key, color in (("predicted / 预测", "predicted_per_customer", "#e15759"),
                             ("actual / 实际", "actual_per_customer", "#4e79a7")):
        points = [(left + 10 + i * step, height - float(r[key] or 0) / top_value * (height - 20))
                  for i, r in enumerate(rows)]
        dash = ' stroke-dasharray="6 3"' if key.startswith("pred") else ""
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" '
                     f'stroke-width="2"{dash}/>')
        parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points)
        legend_y = 20 if key.startswith("pred") else 36
        parts.append(f'<text x="{width + 10}" y="{legend_y}" fill="{color}" font-size="12">'
                     f'{esc(name)}</text>')
    for i, r in enumerate(rows):
        parts.append(f'<text x="{left + 10 + i * step:.1f}" y="{height + 16}" text-anchor="middle" '
                     f'font-size="11">{esc(r["frequency_bucket"])}</text>')
    parts.append(f'<text x="{left - 6}" y="16" text-anchor="end" font-size="11">{top_value:.1f}</text>')
    parts.append(f'<text x="{(width + left) / 2}" y="{height + 34}" text-anchor="middle" '
                 'font-size="11">repeat purchases in the calibration period / 校准期重复购买次数</text>')
    parts.append("</svg>")
    return "".join(parts)


def transition_chart(tag: str, flows: list[dict]) -> str:
    """Transition flow of a tag between its two latest run dates: bands from each value before
    (left) to each value after (right), as wide as the customers who moved."""
    values = sorted({f["from_value"] for f in flows} | {f["to_value"] for f in flows})
    total = sum(f["customers"] for f in flows) or 1
    height, width, gap = 260, 520, 4
    scale = (height - gap * len(values)) / total

    def stacks(side: str) -> dict[str, float]:
        y, out = 10.0, {}
        for v in values:
            out[v] = y
            y += sum(f["customers"] for f in flows if f[side] == v) * scale + gap
        return out

    left_y, right_y = stacks("from_value"), stacks("to_value")
    parts = [(f'<svg class="plot" data-plot="transitions-{esc(tag)}" width="{width + 240}" '
             f'height="{height + 20}" role="img" aria-label="{esc(tag)} transitions">')]
    left_off, right_off = dict(left_y), dict(right_y)
    for flow in sorted(flows, key=lambda f: (values.index(f["from_value"]), values.index(f["to_value"]))):
        h = flow["customers"] * scale
        y0, y1 = left_off[flow["from_value"]], right_off[flow["to_value"]]
        left_off[flow["from_value"]] += h
        right_off[flow["to_value"]] += h
        color = PALETTE[values.index(flow["from_value"]) % len(PALETTE)]
        x0, x1 = 120, width
        parts.append(
            f'<path d="M{x0},{y0:.1f} C{(x0 + x1) / 2},{y0:.1f} {(x0 + x1) / 2},{y1:.1f} {x1},{y1:.1f} '
            f'L{x1},{y1 + h:.1f} C{(x0 + x1) / 2},{y1 + h:.1f} {(x0 + x1) / 2},{y0 + h:.1f} {x0},{y0 + h:.1f} Z" '
            f'fill="{color}" fill-opacity="0.45"><title>{esc(flow["from_value"])} → '
            f'{esc(flow["to_value"])}: {flow["customers"]:,}</title></path>')
    for v in values:
        parts.append(f'<text x="114" y="{left_y[v] + 12:.1f}" text-anchor="end" font-size="11">{esc(v)}</text>')
        parts.append(f'<text x="{width + 6}" y="{right_y[v] + 12:.1f}" font-size="11">{esc(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --- the page ----------------------------------------------------------------------------------

def _transitions(con: duckdb.DuckDBPyConnection, tag: str) -> list[dict] | None:
    """From marts.customer_tag_history (the tag history): the customers' values at the tag's two
    latest run dates. None when the history is not in the warehouse."""
    if not _table_exists(con, "marts", "customer_tag_history"):
        return None
    dates = [r[0] for r in con.execute(
        "select distinct valid_from from marts.customer_tag_history where tag_code = ? "
        "order by valid_from desc limit 2", [tag]).fetchall()]
    if len(dates) < 2:
        return []
    after, before = dates
    return _rows(con, """
        with at_date as (
            select customer_id, tag_value from marts.customer_tag_history
            where tag_code = ? and valid_from <= ? and (valid_to is null or valid_to > ?)
        ), later as (
            select customer_id, tag_value from marts.customer_tag_history
            where tag_code = ? and valid_from <= ? and (valid_to is null or valid_to > ?)
        )
        select coalesce(at_date.tag_value, '(none)') as from_value,
               coalesce(later.tag_value, '(none)') as to_value, count(*) as customers
        from at_date full join later on at_date.customer_id = later.customer_id
        group by 1, 2""", [tag, before, before, tag, after, after])


def _ratio(value: object, form: str) -> str:
    return "" if value is None else format(float(value), form)  # type: ignore[arg-type]


UNINFORMATIVE = " <span class='flag'>uninformative</span>"


def effectiveness_table(rows: list[dict] | None, tags: list[dict]) -> str:
    """marts.tag_effectiveness at each tag's latest backtest date: a table, uninformative tags
    marked; a note when no past run date's window has ended yet."""
    if rows is None:
        return "<p class='note'>No marts.tag_effectiveness in this warehouse.</p>"
    if not rows:
        return ("<p class='note'>No backtest yet: no past run date's window "
                "(effectiveness_window_days after it) has ended before this run date.</p>")
    labels = {t["tag_code"]: _bilingual(t["label_zh"], t["label_en"]) for t in tags}
    body = "".join(
        f"<tr><td>{labels.get(r['tag_code'], esc(r['tag_code']))}"
        f"{UNINFORMATIVE if r['is_uninformative'] else ''}</td>"
        f"<td>{esc(r['backtest_date'])} → {esc(r['window_end'])}</td><td>{esc(r['tag_value'])}</td>"
        f"<td>{r['holders']:,}</td><td>{_ratio(r['repurchase_rate'], '.1%')}</td>"
        f"<td>{_ratio(r['repurchase_lift'], '.2f')}</td>"
        f"<td>{_ratio(r['net_sales_per_customer'], ',.2f')}</td>"
        f"<td>{_ratio(r['net_sales_lift'], '.2f')}</td></tr>" for r in rows)
    return ("<table id='effectiveness'><tr><th>tag</th><th>window</th><th>value</th><th>holders</th>"
            "<th>repurchase rate</th><th>repurchase lift</th><th>net sales / customer</th>"
            f"<th>net sales lift</th></tr>{body}</table>")


def render(warehouse: Path) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        if not _table_exists(con, "marts", "tag_health"):
            raise ValueError(f"{warehouse} has no marts.tag_health: build it first (crm-tags build)")
        run_date = con.execute("select max(as_of_date) from marts.tag_health").fetchone()[0]
        health = _rows(con, "select * from marts.tag_health where as_of_date = ? "
                            "order by dimension, tag_code, sort_order", [run_date])
        flags = _rows(con, "select * from marts.tag_health_flags where as_of_date = ? "
                           "order by flag, health_key", [run_date])
        trend_rows = _rows(con, "select as_of_date, tag_code, coverage from marts.tag_health "
                                "where scope = 'tag' order by as_of_date")
        overlap = _rows(con, "select tag_a, tag_b, jaccard from marts.tag_overlap")
        calibration = []
        if _table_exists(con, "marts", "ltv_calibration"):
            calibration = _rows(con, """select * from marts.ltv_calibration
                where as_of_date = (select max(as_of_date) from marts.ltv_calibration)
                order by bucket_order""")
        transitions = {tag: _transitions(con, tag) for tag in ("lifecycle_stage", "customer_grade")}
        effectiveness = None
        if _table_exists(con, "marts", "tag_effectiveness"):
            # each tag's latest backtest date (the one its uninformative flag is read from)
            effectiveness = _rows(con, """select * from marts.tag_effectiveness as e
                where backtest_date = (select max(backtest_date) from marts.tag_effectiveness
                                       where tag_code = e.tag_code)
                order by tag_code, repurchase_lift desc, tag_value""")

    tags = [dict(r, values=[v for v in health if v["scope"] == "value" and v["tag_code"] == r["tag_code"]])
            for r in health if r["scope"] == "tag"]
    series: dict[str, list[tuple[str, float]]] = {}
    for r in trend_rows:
        series.setdefault(r["tag_code"], []).append((str(r["as_of_date"]), float(r["coverage"] or 0)))
    tag_codes = sorted(t["tag_code"] for t in tags)
    cells = {(r["tag_a"], r["tag_b"]): float(r["jaccard"] or 0) for r in overlap}

    sections = [(f"<h1>标签健康报告 / Tag health report</h1><p class='meta'>Run date / 运行日期: "
                f"<b>{esc(run_date)}</b> · {len(tags)} tags / 标签 · "
                f"{esc(tags[0]['live_customers'] if tags else 0)} live customers / 有效客户 · "
                f"<b>{len(flags)}</b> flags / 预警</p>")]
    flag_rows = "".join(
        f"<tr><td class='flag'>{esc(f['flag'])}</td><td>{esc(f['tag_code'] or f['dimension'])}</td>"
        f"<td>{esc(f['reason'])}</td></tr>" for f in flags) or \
        "<tr><td colspan='3'>No flags / 无预警</td></tr>"
    sections.append("<h2>预警 / Flags (warnings, never a publish blocker)</h2><table id='flags'>"
                    f"<tr><th>flag</th><th>tag / dimension</th><th>reason</th></tr>{flag_rows}</table>")
    sections.append("<h2>覆盖率与取值分布 / Coverage and value mix per tag</h2>" + coverage_chart(tags))
    sections.append("<h2>趋势 / Coverage over the run dates</h2>" + trend_chart(series))
    for tag, flows in transitions.items():
        label = next((_bilingual(t["label_zh"], t["label_en"]) for t in tags if t["tag_code"] == tag), tag)
        if flows:
            sections.append(f"<h2>流转 / Transitions: {label}</h2>" + transition_chart(tag, flows))
        else:
            why = ("the tag history (marts.customer_tag_history) is not in this warehouse"
                   if flows is None else "one run date only so far")
            sections.append(f"<h2>流转 / Transitions: {label}</h2><p class='note'>No flow yet: {esc(why)}.</p>")
    sections.append("<h2>重叠 / Overlap of the tags' holders (Jaccard)</h2>" + heatmap(tag_codes, cells))
    if calibration and calibration[0].get("status") == "done":
        sections.append("<h2>LTV 模型校准 / LTV calibration (hold-out, per frequency bucket)</h2>"
                        + calibration_chart(calibration))
    else:
        reason = calibration[0].get("status_reason") if calibration else "no marts.ltv_calibration"
        sections.append(f"<h2>LTV 模型校准 / LTV calibration</h2><p class='note'>Skipped: {esc(reason)}</p>")
    sections.append("<h2>效果 / Tag effectiveness (backtest: repurchase lift in the window after a "
                    "past run date)</h2>" + effectiveness_table(effectiveness, tags))

    def change(t: dict) -> str:
        return "" if t["holders_change"] is None else f"{t['holders_change']:+,}"

    def share(value: object) -> str:
        return "" if value is None else f"{float(value):.0%}"

    table_rows = "".join(
        f"<tr><td>{esc(t['dimension'])}</td><td>{_bilingual(t['label_zh'], t['label_en'])}</td>"
        f"<td>{t['holders']:,}</td><td>{float(t['coverage'] or 0):.1%}</td><td>{change(t)}</td>"
        f"<td>{share(t['concentration'])}</td>"
        f"<td>{esc(t['staleness_days'])} / {esc(t['refresh_frequency'])}</td><td>{esc(t['flags'])}</td></tr>"
        for t in tags)
    sections.append("<h2>明细 / Figures per tag</h2><table><tr><th>dimension</th><th>tag</th>"
                    "<th>holders</th><th>coverage</th><th>change</th><th>concentration</th>"
                    f"<th>staleness (days / cadence)</th><th>flags</th></tr>{table_rows}</table>")
    style = ("body{font-family:sans-serif;margin:24px;color:#222}h2{margin-top:28px}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
             ".flag{color:#c0392b;font-weight:bold}.meta{font-size:15px}.note{color:#666}")
    return ("<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'>"
            f"<title>Tag health report {esc(run_date)}</title><style>{style}</style></head><body>"
            + "".join(sections) + "</body></html>")


def write_report(warehouse: Path, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_NAME
    path.write_text(render(warehouse), encoding="utf-8")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warehouse", type=Path,
                        default=Path(os.environ.get("CRM_WAREHOUSE_PATH", DEFAULT_WAREHOUSE)))
    parser.add_argument("--out", type=Path, default=Path("reports"),
                        help=f"directory the page is written to ({REPORT_NAME}; default reports/)")


def run(args: argparse.Namespace) -> int:
    try:
        path = write_report(args.warehouse, args.out)
    except (ValueError, duckdb.Error) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"tag health report: {path}")
    return 0
