"""The tag catalog (var `tag_catalog` in dbt_project.yml) and the dbt graph: which models each
cadence runs.

`read_catalog()` is the one reader of the catalog in Python: every other module takes each tag's
entry from it as a `CatalogTag` (every field of the entry, and its values with their labels).

The cadence of a tag is its catalog entry's `refresh_frequency`; its model is `tag_<code>`
(macros/tag_catalog.sql derives the same). Nothing here lists tags by hand: a catalog entry with
`weekly` and a `tag_<code>` model is picked up by the weekly job at the next load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from crm_tags import PROJECT_DIR

DBT_PROJECT_YML = PROJECT_DIR / "dbt_project.yml"
CADENCES = ("daily", "weekly", "monthly")

# How old a tag's newest run date may get before it is stale: one cadence period (a month is
# at most 31 days). Grace for a run in progress is added by the wall-clock freshness policy.
CADENCE_PERIOD = {
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=31),
}

# The folder of models/marts/ whose direct models are the BI marts (customer_tags, ...).
MARTS_FQN = ("marts",)
SEGMENTS_FQN = ("marts", "segments")
HISTORY_FQN = ("marts", "history")
AUDIT_FQN = ("audit",)
TAG_MODEL_PREFIX = "tag_"


class CatalogValue(NamedTuple):
    """A listed value of a tag with its display labels (unpacks as code, label_zh, label_en)."""

    code: str
    label_zh: str
    label_en: str


# values_from: the values are the categories present in the product data (plus those listed)
PRODUCT_CATEGORIES = "product_categories"


@dataclass(frozen=True)
class CatalogTag:
    """A tag's catalog entry: what it means, how it is computed, who owns it, its values."""

    code: str
    dimension: str
    level: str  # tag_level: account or contact
    cadence: str  # refresh_frequency: daily, weekly or monthly
    # listed values in display order
    values: tuple[CatalogValue, ...] = ()
    # "product_categories": the values are the categories present in the product data
    values_from: str | None = None
    is_multi_valued: bool = False
    label_zh: str = ""
    label_en: str = ""
    definition: str = ""
    rule: str = ""
    authoritative_source: str = ""
    source_tables: tuple[str, ...] = ()
    owner: str = ""

    @property
    def model(self) -> str:
        return TAG_MODEL_PREFIX + self.code

    @property
    def values_are_product_categories(self) -> bool:
        return self.values_from == PRODUCT_CATEGORIES


_TEXT_FIELDS = ("label_zh", "label_en", "definition", "rule", "authoritative_source", "owner")


def read_catalog(path: Path = DBT_PROJECT_YML) -> dict[str, CatalogTag]:
    """tag_code -> catalog entry, from a dbt_project.yml; fails on a cadence the schedules do not
    know (dbt checks the other fields while it parses: macros/tag_catalog.sql)."""
    project = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = (project.get("vars") or {}).get("tag_catalog")
    if not isinstance(entries, dict) or not entries:
        raise ValueError(f"{path.name}: vars.tag_catalog must map each tag_code to its entry")
    tags = {}
    for code, entry in entries.items():
        cadence = str(entry.get("refresh_frequency", "")).strip().lower()
        if cadence not in CADENCES:
            raise ValueError(
                f"{path.name}: vars.tag_catalog.{code}.refresh_frequency is {cadence!r}; "
                f"expected one of {', '.join(CADENCES)}"
            )
        tags[code] = CatalogTag(
            code=code,
            dimension=str(entry["dimension"]).strip(),
            level=str(entry["tag_level"]).strip(),
            cadence=cadence,
            values=tuple(
                CatalogValue(str(value), str(labels[0]), str(labels[1]))
                for value, labels in (entry.get("values") or {}).items()
            ),
            values_from=entry.get("values_from"),
            is_multi_valued=bool(entry.get("is_multi_valued")),
            source_tables=tuple(str(t) for t in entry.get("source_tables") or ()),
            **{name: str(entry.get(name) or "").strip() for name in _TEXT_FIELDS},
        )
    return tags


class DbtGraph:
    """The models, seeds and snapshots of a dbt manifest, by name, with their parents."""

    def __init__(self, manifest: Mapping[str, Any]):
        self.manifest = manifest
        self.nodes: dict[str, Mapping[str, Any]] = {
            node["name"]: node
            for node in manifest["nodes"].values()
            if node["resource_type"] in ("model", "seed", "snapshot")
        }
        by_id = {node["unique_id"]: name for name, node in self.nodes.items()}
        self.parents: dict[str, set[str]] = {
            name: {by_id[p] for p in node.get("depends_on", {}).get("nodes", []) if p in by_id}
            for name, node in self.nodes.items()
        }

    @classmethod
    def from_path(cls, path: Path) -> DbtGraph:
        return cls(json.loads(path.read_text()))

    def ancestors(
        self, names: Iterable[str], stop: set[str] | frozenset[str] = frozenset()
    ) -> set[str]:
        """Names and every node they need, not walking into (nor including) `stop`."""
        seen: set[str] = set()
        todo = [n for n in names if n not in stop]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo.extend(p for p in self.parents[name] if p not in stop and p not in seen)
        return seen

    def folder(self, name: str) -> tuple[str, ...]:
        """The model's folders below models/ (fqn without project and model name)."""
        return tuple(self.nodes[name]["fqn"][1:-1])

    @cached_property
    def tag_models(self) -> set[str]:
        return {
            name
            for name, node in self.nodes.items()
            if node["resource_type"] == "model"
            and name.startswith(TAG_MODEL_PREFIX)
            and self.folder(name)[:2] == ("marts", "tags")
        }

    @cached_property
    def audit_models(self) -> set[str]:
        return {name for name in self.nodes if self.folder(name)[:1] == AUDIT_FQN}

    @cached_property
    def refreshed_with_tag(self) -> dict[str, str]:
        """Models rebuilt with a tag, by their config meta `refresh_with_tag: <code>` (e.g. the
        LTV hold-out check, marts.ltv_calibration, with ltv): model -> tag code."""
        return {
            name: str(code)
            for name, node in self.nodes.items()
            if (code := ((node.get("config") or {}).get("meta") or {}).get("refresh_with_tag"))
        }

    @cached_property
    def bi_marts(self) -> set[str]:
        """customer_tags, customer_profile, contact_tags, tag_catalog, tag_value_labels, the
        segments (models/marts/segments/) and the tag history (models/marts/history/: each run
        writes the tags it computed into it): what every cadence rebuilds after its tags."""
        return {
            name
            for name, node in self.nodes.items()
            if node["resource_type"] == "model"
            and self.folder(name) in (MARTS_FQN, SEGMENTS_FQN, HISTORY_FQN)
        }


class Cadences:
    """The catalog joined to the dbt graph: the models each cadence's job materialises."""

    def __init__(self, catalog: Mapping[str, CatalogTag], graph: DbtGraph):
        self.catalog = catalog
        self.graph = graph
        unknown = graph.tag_models - {t.model for t in catalog.values()}
        if unknown:
            raise ValueError(
                f"tag models without a catalog entry in {DBT_PROJECT_YML.name}: {sorted(unknown)}"
            )

    def tag_of_model(self, model: str) -> CatalogTag | None:
        if model not in self.graph.tag_models:
            return None
        return self.catalog.get(model.removeprefix(TAG_MODEL_PREFIX))

    def tag_models(self, cadence: str) -> set[str]:
        """Tag models whose catalog row has this cadence (tags without a model yet are left out)."""
        return {
            t.model
            for t in self.catalog.values()
            if t.cadence == cadence and t.model in self.graph.tag_models
        }

    def uncomputed_tags(self) -> set[str]:
        """Catalog entries without a `tag_<code>` model yet (e.g. a tag still being written)."""
        return {t.code for t in self.catalog.values() if t.model not in self.graph.tag_models}

    def models(self, cadence: str) -> set[str]:
        """Tag models of the cadence and all they need, then the BI marts and what *they* need
        besides tag models: other cadences' tags are not rebuilt, the marts read their last tables.
        A tag another tag needs (purchase_frequency for customer_grade) is rebuilt with it,
        and so are the models that declare `meta: {refresh_with_tag: <code>}` for a tag the
        cadence rebuilds (the LTV hold-out check with ltv), with what they need.
        The landing-zone audit (quarantine, reconciliation) is rebuilt by every cadence: it
        describes the landing zone this run read, and the quality gate validates it.
        """
        tags = self.graph.ancestors(self.tag_models(cadence))
        companions = {name for name, code in self.graph.refreshed_with_tag.items()
                      if TAG_MODEL_PREFIX + code in tags}
        tags |= self.graph.ancestors(companions)
        marts = self.graph.ancestors(self.graph.bi_marts, stop=self.graph.tag_models)
        audit = self.graph.ancestors(self.graph.audit_models)
        return tags | marts | audit

    def refreshed_tags(self, cadence: str) -> set[str]:
        """Tag models a cadence's run rebuilds: its own and the tags they depend on."""
        return self.models(cadence) & self.graph.tag_models
