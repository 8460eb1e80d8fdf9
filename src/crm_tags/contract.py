"""The landing-zone contract, read from the dbt source YAML (the single place it is written down)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pyarrow as pa
import yaml

from crm_tags import PROJECT_DIR

_ARROW_TYPES: dict[str, pa.DataType] = {
    "varchar": pa.string(),
    "integer": pa.int32(),
    "decimal(18,2)": pa.decimal128(18, 2),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "boolean": pa.bool_(),
}


@cache
def landing_tables() -> dict[str, list[tuple[str, str]]]:
    """{'orders/orders': [(column, contract type), ...], ...} in contract order."""
    tables: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((PROJECT_DIR / "models" / "staging").glob("*/_*__sources.yml")):
        for source in yaml.safe_load(path.read_text())["sources"]:
            for table in source["tables"]:
                columns = [(c["name"], c["data_type"].lower()) for c in table["columns"]]
                tables[table["meta"]["landing_path"]] = columns
    return tables


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema a delivery file of `table` (e.g. 'orders/orders') must have."""
    return pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in landing_tables()[table]])


def write_delivery(raw_dir: Path, table: str, rows: list[dict], file_name: str = "delivery.parquet") -> Path:
    """Write one delivery file of `table` with the contract schema; missing keys become nulls."""
    import pyarrow.parquet as pq

    schema = arrow_schema(table)
    columns = {f.name: [row.get(f.name) for row in rows] for f in schema}
    folder = Path(raw_dir) / table
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    pq.write_table(pa.table(columns, schema=schema), path)
    return path
