"""A throwaway PostgreSQL cluster for tests and benchmarks (docs/engines.md).

initdb into a temporary folder, pg_ctl start on a unix socket in that folder (no TCP port is
opened), stop and delete on exit. PostgreSQL refuses to run as root, so as root the server
runs as the `postgres` system user (Debian's package creates it).

The cluster sorts text by byte (collation C), as DuckDB does, and classifies characters by
Unicode (ctype C.UTF-8), so `order by` on text and the regular expressions match DuckDB's.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise RuntimeError(f"{name} not found: install PostgreSQL 15 (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def throwaway_cluster(database: str = "crm_tags"):
    """Yield the connection settings (CRM_PG_* environment) of a fresh cluster with `database`."""
    root = Path(tempfile.mkdtemp(prefix="crm_tags_pg_"))
    data, socket_dir = root / "data", root / "socket"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(socket_dir, "postgres")
    port = _free_port()
    subprocess.run(
        _as_server_user([_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--lc-collate=C", "--lc-ctype=C.UTF-8"]),
        check=True, capture_output=True,
    )
    options = f"-k {socket_dir} -p {port} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_server_user([_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"),
                         "-w", "start"]),
        check=True, capture_output=True,
    )
    try:
        subprocess.run(
            [_pg_bin("createdb"), "-h", str(socket_dir), "-p", str(port), "-U", "postgres", database],
            check=True, capture_output=True,
        )
        yield {
            "CRM_PG_HOST": str(socket_dir),
            "CRM_PG_PORT": str(port),
            "CRM_PG_USER": "postgres",
            "CRM_PG_PASSWORD": "",
            "CRM_PG_DATABASE": database,
        }
    finally:
        subprocess.run(_as_server_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
