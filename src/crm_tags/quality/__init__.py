"""Quality gate: Great Expectations checkpoints run inside DuckDB, and write-audit-publish.

    from crm_tags.quality import run_gate, build_and_publish

    result = run_gate(Path("data/warehouse.duckdb"))        # audit a warehouse in place
    published = build_and_publish(raw_dir, warehouse, as_of)  # build, audit, publish if it passes

Names are imported lazily, so importing the package does not load Great Expectations.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_gate": "crm_tags.quality.gate",
    "GateResult": "crm_tags.quality.gate",
    "Finding": "crm_tags.quality.gate",
    "build_and_publish": "crm_tags.quality.publish",
    "gate_and_publish": "crm_tags.quality.publish",
    "PublishResult": "crm_tags.quality.publish",
}

__all__ = ["Finding", "GateResult", "PublishResult", "build_and_publish", "gate_and_publish", "run_gate"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crm_tags.quality' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
