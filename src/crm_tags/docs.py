"""The dbt docs site (`crm-tags docs`) and the check that it documents the whole project.

The site is generated from the project's code, not from a warehouse: dbt builds every seed and
model with no rows (`dbt build --empty`) into a scratch DuckDB file over an empty landing zone,
so the catalog knows every table's columns and types, then `dbt docs generate --static` writes
one self-contained HTML page (the manifest and catalog embedded) that opens from file:// with no
network. It never opens the warehouse BI tools read, so it never locks them out.

`undocumented(manifest, catalog)` names what the site leaves undescribed: every model, seed
(and seed column) and source table, and every column of the BI marts (models/marts/ and its
folders other than core/ and tags/: the segments, the LTV model card).
customer_profile's tag columns are the one exception: they are described by the model's
description, which lists them from the catalog (adding a tag must not need another YAML edit,
docs/adding-a-tag.md), so a profile column without its own description passes only when it is a
single-valued account-level tag of the catalog *and* that list names it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from crm_tags import PROJECT_DIR
from crm_tags.build import DbtError, run_dbt
from crm_tags.catalog import MARTS_FQN

# marts/ folders that are not read by BI: the facts and dimensions, and the tag models
NOT_BI_FOLDERS = {(*MARTS_FQN, 'core'), (*MARTS_FQN, 'tags')}

DEFAULT_OUT = PROJECT_DIR / "target" / "docs"
PROFILE_MODEL = "customer_profile"
# how customer_profile's description introduces its tag columns (models/marts/_marts__models.yml)
PROFILE_TAG_LIST = re.compile(r"The tag columns, from the catalog: ([a-z0-9_, ]+);")


@dataclass(frozen=True)
class DocsSite:
    index: Path  # the self-contained page (dbt's static_index.html)
    manifest: Path
    catalog: Path


def generate_docs(out_dir: Path = DEFAULT_OUT, work_dir: Path | None = None,
                  quiet: bool = True) -> DocsSite:
    """Write the dbt docs site to out_dir/index.html (plus the manifest and catalog it embeds).
    work_dir keeps the scratch landing zone, warehouse and dbt target (default: a temporary
    directory, removed afterwards)."""
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="crm-tags-docs-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp)
        raw, warehouse, target = work / "raw", work / "schema.duckdb", work / "target"
        raw.mkdir(parents=True, exist_ok=True)
        warehouse.unlink(missing_ok=True)
        with _no_usage_tracking():
            run_dbt(["build", "--empty", "--exclude-resource-type", "test",
                     "--exclude-resource-type", "unit_test"], raw, warehouse, target_path=target,
                    quiet=quiet)
            run_dbt(["docs", "generate", "--static"], raw, warehouse, target_path=target, quiet=quiet)
        out_dir.mkdir(parents=True, exist_ok=True)
        site = DocsSite(out_dir / "index.html", out_dir / "manifest.json", out_dir / "catalog.json")
        site.index.write_text(offline_page((target / "static_index.html").read_text(encoding="utf-8")),
                              encoding="utf-8")
        shutil.copyfile(target / "manifest.json", site.manifest)
        shutil.copyfile(target / "catalog.json", site.catalog)
    return site


# Two slips of dbt's docs page (dbt-core 1.11) that make the browser fetch a URL that is not one,
# each a console error: the sidebar's SVG icons bind `xlink:href="{{ getIcon(...) }}"`, which the
# browser resolves before Angular interpolates it (from file:// an "Unsafe attempt to load URL"
# per icon; Angular's ng-attr- binding sets the attribute only once interpolated), and the
# favicon link is an unbuilt webpack placeholder (`${require(...)}`; an empty data: icon instead).
PAGE_FIXES = (
    ('<use xlink:href="{{', '<use ng-attr-xlink:href="{{'),
    ("href=\"${require('./assets/favicons/favicon.ico')}\"", 'href="data:,"'),
)


def offline_page(html: str) -> str:
    """dbt's static docs page with PAGE_FIXES applied (each only where dbt still has the slip)."""
    for slip, fix in PAGE_FIXES:
        html = html.replace(slip, fix)
    return html


@contextmanager
def _no_usage_tracking() -> Iterator[None]:
    """dbt embeds its usage-tracking setting in the page, which then reports to dbt Labs from the
    reader's browser: a page for an offline, closed network must not."""
    before = os.environ.get("DBT_SEND_ANONYMOUS_USAGE_STATS")
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"]
        else:
            os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = before


def profile_tag_columns(project_yml: Path = PROJECT_DIR / "dbt_project.yml") -> list[str]:
    """The columns customer_profile gets from the catalog: its single-valued account-level tags
    (macros/tag_catalog.sql, account_tags() without the multi-valued ones), in catalog order."""
    project = yaml.safe_load(project_yml.read_text(encoding="utf-8")) or {}
    catalog = (project.get("vars") or {}).get("tag_catalog") or {}
    return [code for code, tag in catalog.items()
            if tag.get("tag_level") == "account" and tag.get("is_multi_valued") is False]


def undocumented(manifest: dict, catalog: dict, profile_tags: list[str] | None = None) -> list[str]:
    """One sentence per thing the docs leave undescribed (empty when the docs are complete)."""
    profile_tags = profile_tag_columns() if profile_tags is None else profile_tags
    problems: list[str] = []
    for uid, node in sorted(manifest["nodes"].items()):
        kind = node["resource_type"]
        if kind not in ("model", "seed"):
            continue
        where = f"{kind} {node['name']} ({node['original_file_path']})"
        if not node["description"].strip():
            problems.append(f"{where} has no description")
        if kind == "seed":
            problems += [f"{where}: column {name} has no description"
                         for name, column in node["columns"].items() if not column["description"].strip()]
        folder = tuple(node["fqn"][1:-1])
        if kind == "model" and folder[:1] == MARTS_FQN and folder[:2] not in NOT_BI_FOLDERS:
            problems += _mart_columns(where, node, catalog["nodes"].get(uid), profile_tags)
    for _uid, source in sorted(manifest["sources"].items()):
        if not source["description"].strip():
            problems.append(f"source {source['source_name']}.{source['name']} "
                            f"({source['original_file_path']}) has no description")
    return problems


def _mart_columns(where: str, node: dict, built: dict | None, profile_tags: list[str]) -> list[str]:
    """The BI mart's columns as built (dbt's catalog) against the ones its YAML describes."""
    if built is None:
        return [f"{where}: not in dbt's catalog (was it built?)"]
    described = {name.lower() for name, column in node["columns"].items() if column["description"].strip()}
    actual = [name.lower() for name in sorted(built["columns"], key=lambda c: built["columns"][c]["index"])]
    listed: set[str] = set()
    if node["name"] == PROFILE_MODEL:
        found = PROFILE_TAG_LIST.search(node["description"])
        listed = {code.strip() for code in found.group(1).split(",")} if found else set()
    problems = []
    for column in actual:
        if column in described:
            continue
        if column in listed and column in profile_tags:
            continue  # a tag column, described through the model description's list
        problems.append(f"{where}: column {column} has no description")
    problems += [f"{where}: column {name} is described but not in the table"
                 for name in sorted(set(node["columns"]) - set(actual))]
    return problems


def check_site(site: DocsSite) -> list[str]:
    return undocumented(json.loads(site.manifest.read_text()), json.loads(site.catalog.read_text()))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"directory of the site: index.html opens from file:// offline "
                             f"(default: {DEFAULT_OUT.relative_to(PROJECT_DIR)})")
    parser.add_argument("--quiet", action="store_true", help="hide dbt's output")


def run(args: argparse.Namespace) -> int:
    try:
        site = generate_docs(args.out, quiet=args.quiet)
    except DbtError as error:
        print(error, file=sys.stderr)
        return 1
    problems = check_site(site)
    for problem in problems:
        print(f"undocumented: {problem}", file=sys.stderr)
    print(f"dbt docs: {site.index} (open it in a browser; it needs no server or network)")
    return 1 if problems else 0
