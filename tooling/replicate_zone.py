"""A landing zone of K x N customers made from a cached zone of N (the bench's), for measuring
how far DuckDB goes (docs/benchmark.md, "How far DuckDB goes on this machine").

Generating 1M customers takes ~6.5 min; copying takes seconds per million. Copy k (2..K) of
every customer-keyed file gets its keys suffixed `-r<k>` and its emails `r<k>@...`, so the
copies are disjoint customers with the same shapes (and the same dirt) as the original; the
shared dimensions (products, promotions, campaigns) are delivered once. Each copy keeps its
source file's modification time, which the landing zone reads as the delivery time.

    python tooling/replicate_zone.py /tmp/crm-tags-bench/landing/n1000000_seed42_2025-06-30 4

writes .../n4000000_seed42_2025-06-30 (the name `crm-tags bench --customers 4000000` reuses).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import duckdb

# per table: (columns that are keys, columns that are emails); tables not listed are shared
KEYED = {
    "crm/accounts": (["account_id"], []),
    "crm/contacts": (["contact_id", "account_id"], ["email"]),
    "crm/manual_tags": (["account_id"], []),
    "orders/orders": (["order_id", "account_id"], []),
    "orders/order_items": (["order_id"], []),
    "support/tickets": (["ticket_id", "account_id"], ["requester_email"]),
    "campaigns/campaign_events": (["event_id"], ["recipient_email"]),
    "campaigns/web_events": (["event_id", "visitor_id"], ["user_email"]),
    "campaigns/attributed_orders": (["order_id", "account_id"], []),
}


def replicate(source: Path, copies: int) -> Path:
    stamp = json.loads((source / "_bench_landing.json").read_text())
    customers = int(re.match(r"n(\d+)_", source.name)[1])
    target = source.parent / source.name.replace(f"n{customers}_", f"n{customers * copies}_", 1)
    if (target / "_bench_landing.json").exists():
        return target
    con = duckdb.connect()
    rows: dict[str, int] = {}
    files: dict[str, int] = {}
    for table_dir in sorted(p for p in source.glob("*/*") if p.is_dir()):
        table = f"{table_dir.parent.name}/{table_dir.name}"
        out = target / table
        out.mkdir(parents=True, exist_ok=True)
        keys, emails = KEYED.get(table, ([], []))
        for src in sorted(table_dir.glob("*.parquet")):
            dst = out / src.name
            if not dst.exists():
                os.link(src, dst)  # copy 1: the original file itself
            if not keys:
                continue
            for k in range(2, copies + 1):
                dst = out / f"{src.stem}_r{k}.parquet"
                if dst.exists():
                    continue
                replaced = [f"{c} || '-r{k}' as {c}" for c in keys]
                replaced += [f"replace({c}, '@', 'r{k}@') as {c}" for c in emails]
                part = dst.with_suffix(".part")
                con.execute(f"copy (select * replace ({', '.join(replaced)}) from read_parquet('{src}')) "
                            f"to '{part}' (format parquet)")
                os.replace(part, dst)
                st = src.stat()
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        n_copies = copies if keys else 1
        rows[table] = stamp["rows"][table] * n_copies
        files[table] = stamp["files"][table] * n_copies
        print(f"{table}: {files[table]} files", flush=True)
    size = sum(f.stat().st_size for f in target.rglob("*.parquet"))
    (target / "_bench_landing.json").write_text(json.dumps(
        {"generate_seconds": None, "replicated_from": str(source), "copies": copies,
         "rows": rows, "files": files, "bytes": size}, indent=2))
    return target


if __name__ == "__main__":
    print(replicate(Path(sys.argv[1]), int(sys.argv[2])))
