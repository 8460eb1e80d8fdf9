"""Single authoritative source, checked on the dbt lineage (manifest.json).

Each tag model `tag_<code>` must read exactly the raw tables its catalog entry
(`vars.tag_catalog` in dbt_project.yml, `source_tables`) declares. The identity tables crm.accounts (the
customer key, the deleted flag) and crm.contacts (email identity resolution) may sit upstream of
every tag (raw-sources.md, Identity) and are left out on both sides. A tag model that starts
reading `campaigns.attributed_orders` therefore shows up as an undeclared source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

IDENTITY_TABLES = frozenset({"crm.accounts", "crm.contacts"})
# On engines without dbt Python models a SQL stand-in reads the host-run model's result
# (docs/engines.md): that output is no raw table; the stand-in's other parents are the model's.
HOST_RUN_OUTPUTS = frozenset({"python_models"})


@dataclass(frozen=True)
class TagLineage:
    tag_code: str
    model: str | None  # None: the tag has no model in the manifest (not computed yet)
    declared: frozenset[str]  # catalog source_tables minus identity tables
    actual: frozenset[str]  # upstream dbt sources minus identity tables

    @property
    def undeclared(self) -> frozenset[str]:
        return self.actual - self.declared

    @property
    def unused(self) -> frozenset[str]:
        return self.declared - self.actual

    @property
    def problem(self) -> str | None:
        """A sentence for stewards, or None when lineage and catalog agree."""
        if self.model is None or self.actual == self.declared:
            return None
        parts = []
        if self.undeclared:
            parts.append(f"reads {_names(self.undeclared)}, which its catalog entry does not "
                         "declare")
        if self.unused:
            parts.append(f"does not read {_names(self.unused)}, which its catalog entry declares")
        return (
            f"tag {self.tag_code} ({self.model}) " + " and ".join(parts)
            + f"; catalog source_tables: {_names(self.declared) or '(identity only)'}"
        )


def _names(tables: frozenset[str]) -> str:
    return " ".join(sorted(tables))


def load_manifest(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def upstream_sources(manifest: dict, node_id: str) -> frozenset[str]:
    """Every dbt source ('orders.orders') reachable upstream of `node_id` through models/seeds."""
    nodes, sources = manifest["nodes"], manifest["sources"]
    found: set[str] = set()
    seen: set[str] = set()
    stack = [node_id]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in sources:
            source = sources[current]
            if source["source_name"] not in HOST_RUN_OUTPUTS:
                found.add(f"{source['source_name']}.{source['name']}")
        elif current in nodes:
            stack.extend(nodes[current].get("depends_on", {}).get("nodes", []))
    return frozenset(found)


def tag_lineage(manifest: dict, catalog: dict[str, str]) -> list[TagLineage]:
    """One TagLineage per catalog tag; `catalog` maps tag_code -> space-separated source_tables."""
    models = {
        node["name"]: node_id
        for node_id, node in manifest["nodes"].items()
        if node.get("resource_type") == "model"
    }
    result = []
    for tag_code, source_tables in sorted(catalog.items()):
        declared = frozenset((source_tables or "").split()) - IDENTITY_TABLES
        node_id = models.get(f"tag_{tag_code}")
        actual = upstream_sources(manifest, node_id) - IDENTITY_TABLES if node_id else frozenset()
        result.append(TagLineage(tag_code, f"tag_{tag_code}" if node_id else None, declared, actual))
    return result
