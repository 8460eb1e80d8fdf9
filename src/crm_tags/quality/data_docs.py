"""Data Docs: the quality gate's results as static HTML pages, one site per warehouse.

    <site>/data_docs/index.html            every run on this warehouse, newest first, and the
                                           latest run's suites
    <site>/data_docs/runs/<run>.html       one run: every check, what it measured, the problems
    <site>/data_docs/runs/<run>.json       the run's record the pages are rendered from

GX's own Data Docs load Bootstrap, jQuery, Font Awesome and Vega from public CDNs (offline and
behind many company proxies the index is empty and unstyled), link suite pages the gate never
writes, and show a problem query's failures as "0% unexpected". These pages are plain HTML with
their style inline and no script: they open from disk, offline, in any browser. Each check
shows what it measured in words (crm_tags.quality.gate.observe): a share against its bounds,
the count of problems and the first ones, or the rows it looked at.

Every page is rendered from the JSON records, so the whole site is rebuilt on each run and a
change here applies to earlier runs too.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm_tags.quality.gate import GateResult

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC",
       "Microsoft YaHei", sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 14px 28px; }
header a { color: #c9d1d9; }
header h1 { font-size: 20px; margin: 0 0 4px; }
main { padding: 8px 28px 40px; max-width: 1500px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 4px 16px 12px;
          margin: 16px 0; }
h2 { font-size: 18px; margin: 14px 0 8px; }
h3 { font-size: 16px; margin: 12px 0 6px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border-bottom: 1px solid #d8dee4; padding: 5px 8px; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.number, th.number { text-align: right; white-space: nowrap; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: #57606a; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 9px; font-size: 12px;
         font-weight: 600; white-space: nowrap; }
.passed { background: #dafbe1; color: #116329; }
.failed { background: #ffebe9; color: #a40e26; }
.flagged, .warning { background: #fff8c5; color: #7d4e00; }
.error { background: #ffebe9; color: #a40e26; }
.info, .critical { background: #eaeef2; color: #424a53; }
ul.examples { margin: 4px 0 0; padding-left: 18px; font-size: 13px; }
.muted { color: #57606a; font-size: 13px; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
"""


def write_site(docs_dir: Path, result: GateResult, warehouse: Path) -> tuple[Path, Path]:
    """Record `result` on the Data Docs site in `docs_dir` (the site of `warehouse`, the warehouse
    the run audited or a candidate for) and rebuild its pages; returns (index, run page)."""
    runs = docs_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    record = run_record(result, warehouse)
    (runs / f"{record['run_id']}.json").write_text(
        json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    records = sorted(
        (json.loads(path.read_text(encoding="utf-8")) for path in runs.glob("*.json")),
        key=lambda r: r["started_at"], reverse=True)
    for each in records:
        (runs / f"{each['run_id']}.html").write_text(render_run(each), encoding="utf-8")
    index = docs_dir / "index.html"
    index.write_text(render_index(records, warehouse), encoding="utf-8")
    return index, runs / f"{record['run_id']}.html"


def run_record(result: GateResult, warehouse: Path) -> dict:
    """What the pages of one run are rendered from (JSON-serialisable)."""
    return {
        "run_id": f"{result.started_at:%Y%m%dT%H%M%S%fZ}",
        "started_at": result.started_at.isoformat(timespec="seconds"),
        "warehouse": str(warehouse),
        "audited_file": str(result.warehouse),
        "run_date": str(result.run_date) if result.run_date else None,
        "customers": result.customers,
        "passed": result.passed,
        "seconds": round(result.seconds, 1),
        "suites": [dataclasses.asdict(suite) for suite in result.suites],
        "checks": [dataclasses.asdict(check) for check in result.checks],
        "failures": [dataclasses.asdict(finding) for finding in result.failures],
        "warnings": [dataclasses.asdict(finding) for finding in result.warnings],
        "notes": list(result.notes),
    }


# ------------------------------------------------------------------------------------------
# Pages
# ------------------------------------------------------------------------------------------

def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def anchor(suite: str) -> str:
    """The id of a suite's section on its run page."""
    return "suite-" + re.sub(r"[^A-Za-z0-9_-]+", "-", suite)


def _page(title: str, header: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # no request leaves the page: not even the browser's default favicon probe
        "<link rel=\"icon\" href=\"data:,\">"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n"
        f"<body><header>{header}</header><main>{body}</main></body></html>\n"
    )


def _verdict(passed: bool) -> str:
    return ('<span class="badge passed">PASSED</span>' if passed
            else '<span class="badge failed">FAILED</span>')


def _suite_status(suite: dict) -> str:
    if suite["failed_blocking"]:
        return '<span class="badge failed">failed</span>'
    if suite["flagged"]:
        return '<span class="badge flagged">flagged</span>'
    return '<span class="badge passed">passed</span>'


def _suites_table(suites: list[dict], link: str) -> str:
    """Suites grouped by checkpoint, each linking to its section on the run page `link`."""
    rows = []
    for suite in suites:
        rows.append(
            f"<tr><td>{_e(suite['checkpoint'])}</td>"
            f"<td><a href=\"{_e(link)}#{anchor(suite['suite'])}\">{_e(suite['suite'])}</a></td>"
            f"<td class=\"number\">{suite['evaluated']}</td>"
            f"<td class=\"number\">{suite['failed_blocking']}</td>"
            f"<td class=\"number\">{suite['flagged']}</td><td>{_suite_status(suite)}</td></tr>")
    return ("<table><tr><th>checkpoint</th><th>suite</th><th class=\"number\">expectations</th>"
            "<th class=\"number\">blocking</th><th class=\"number\">flagged</th><th>status</th>"
            "</tr>" + "".join(rows) + "</table>")


def render_index(records: list[dict], warehouse: Path) -> str:
    header = ("<h1>Quality gate · Data Docs</h1>"
              f"<div>warehouse <code style=\"color:#c9d1d9\">{_e(warehouse)}</code></div>")
    if not records:
        return _page("Quality gate", header, "<section><p>No run yet.</p></section>")
    latest = records[0]
    link = f"runs/{latest['run_id']}.html"
    body = [
        ("<section><h2>Latest run: "
         f"<a href=\"{_e(link)}\">run date {_e(latest['run_date'])}, started "
         f"{_e(latest['started_at'])}</a> {_verdict(latest['passed'])}</h2>"),
        (f"<p>{latest['customers']:,} customers; {len(latest['failures'])} blocking "
         f"failure(s), {len(latest['warnings'])} flagged.</p>"),
        _suites_table(latest["suites"], link),
        "</section>",
        ("<section><h2>All runs on this warehouse</h2><table><tr><th>started (UTC)</th>"
         "<th>run date</th><th>verdict</th><th class=\"number\">customers</th>"
         "<th class=\"number\">expectations</th><th class=\"number\">blocking</th>"
         "<th class=\"number\">flagged</th><th>audited file</th></tr>"),
    ]
    for record in records:
        body.append(
            f"<tr><td><a href=\"runs/{_e(record['run_id'])}.html\">{_e(record['started_at'])}</a>"
            f"</td><td>{_e(record['run_date'])}</td><td>{_verdict(record['passed'])}</td>"
            f"<td class=\"number\">{record['customers']:,}</td>"
            f"<td class=\"number\">{len(record['checks'])}</td>"
            f"<td class=\"number\">{len(record['failures'])}</td>"
            f"<td class=\"number\">{len(record['warnings'])}</td>"
            f"<td><code>{_e(Path(record['audited_file']).name)}</code></td></tr>")
    body.append("</table></section>")
    return _page(f"Quality gate · {Path(warehouse).name}", header, "".join(body))


def _findings(title: str, findings: list[dict]) -> str:
    if not findings:
        return ""
    items = "".join(
        f"<li><a href=\"#{anchor(f['suite'])}\">{_e(f['suite'])}</a>: {_e(f['description'])}"
        f" <span class=\"muted\">{_e(f['details'])}</span></li>" for f in findings)
    return f"<section><h2>{_e(title)}</h2><ul>{items}</ul></section>"


def _check_row(check: dict) -> str:
    status = check["status"]
    label = {"passed": "passed", "failed": "failed", "error": "not evaluated"}[status]
    css = "flagged" if status == "failed" and check["severity"] == "warning" else status
    examples = "".join(f"<li>{_e(example)}</li>" for example in check["examples"])
    return (
        f"<tr><td><span class=\"badge {css}\">{label}</span></td>"
        f"<td><span class=\"badge {_e(check['severity'])}\">{_e(check['severity'])}</span></td>"
        f"<td>{_e(check['description'])}<br><code>{_e(check['expectation'])}</code></td>"
        f"<td>{_e(check['observed'])}"
        + (f"<ul class=\"examples\">{examples}</ul>" if examples else "") + "</td></tr>")


def render_run(record: dict) -> str:
    header = (
        "<div><a href=\"../index.html\">← all runs on this warehouse</a></div>"
        f"<h1>Quality gate run · run date {_e(record['run_date'])} "
        f"{_verdict(record['passed'])}</h1>"
    )
    facts = (
        "<section><dl class=\"facts\">"
        f"<dt>warehouse</dt><dd><code>{_e(record['warehouse'])}</code></dd>"
        f"<dt>audited file</dt><dd><code>{_e(record['audited_file'])}</code></dd>"
        f"<dt>run date</dt><dd>{_e(record['run_date'])}</dd>"
        f"<dt>customers</dt><dd>{record['customers']:,}</dd>"
        f"<dt>started (UTC)</dt><dd>{_e(record['started_at'])}</dd>"
        f"<dt>duration</dt><dd>{record['seconds']} s</dd>"
        f"<dt>expectations</dt><dd>{len(record['checks'])} evaluated in "
        f"{len(record['suites'])} suites</dd></dl></section>"
    )
    body = [facts,
            _findings("Blocking failures: the marts must not be published", record["failures"]),
            _findings("Flagged for a steward (not blocking)", record["warnings"])]
    if record["notes"]:
        body.append("<section><h2>Notes</h2><ul>"
                    + "".join(f"<li>{_e(note)}</li>" for note in record["notes"])
                    + "</ul></section>")
    body.append("<section><h2>Suites</h2>" + _suites_table(record["suites"], "") + "</section>")
    by_suite: dict[str, list[dict]] = {}
    for check in record["checks"]:
        by_suite.setdefault(check["suite"], []).append(check)
    for suite in dict.fromkeys([s["suite"] for s in record["suites"]] + list(by_suite)):
        checks = by_suite.get(suite, [])
        checkpoint = checks[0]["checkpoint"] if checks else ""
        body.append(
            f"<section id=\"{anchor(suite)}\"><h3>{_e(suite)} "
            f"<span class=\"muted\">checkpoint {_e(checkpoint)}</span></h3>"
            "<table><tr><th>status</th><th>severity</th><th>check</th><th>observed</th></tr>"
            + "".join(_check_row(check) for check in checks) + "</table></section>")
    title = f"Quality gate run {record['run_date']} ({'passed' if record['passed'] else 'failed'})"
    return _page(title, header, "".join(body))
