"""Who holds a warehouse file, said in a sentence a user understands.

DuckDB locks a database file with a POSIX record lock (fcntl) over the whole file: a read-write
connection takes a write lock, a read-only connection a read lock. Read locks coexist; a write
lock excludes every other lock. So while a BI tool has the file open, no process can open it
read-write, and while a build writes it, no BI tool can open it at all. That is why the
everyday build never writes the file BI reads: it builds another file and renames it over this
one (crm_tags.quality.publish).
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# DuckDB's own wording, e.g. 'IO Error: Could not set lock on file "/w.duckdb": Conflicting
# lock is held in /usr/bin/python3.11 (PID 4242) ...'
DUCKDB_LOCK_ERROR = re.compile(
    r'Could not set lock on file "(?P<path>[^"]+)"(?:: Conflicting lock is held in '
    r"(?P<program>.+?) \(PID (?P<pid>\d+)\))?")

_FLOCK = "hhqqi"  # struct flock: l_type, l_whence, l_start, l_len, l_pid (native alignment)


@dataclass(frozen=True)
class LockHolder:
    pid: int
    writes: bool  # a read-write connection (else read-only)
    program: str  # its command line, shortened

    def __str__(self) -> str:
        mode = "read-write" if self.writes else "read-only"
        return f"process {self.pid} ({self.program}, {mode})"


class WarehouseLocked(RuntimeError):
    """Another process holds a lock on a warehouse file this one needs; the message names it."""


def lock_holders(path: Path) -> list[LockHolder]:
    """The other processes holding a lock on `path`: every one of them from /proc/locks (Linux),
    else the one that fcntl's F_GETLK reports."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return []
    holders = _proc_locks(stat) if Path("/proc/locks").exists() else None
    if holders is None:
        holder = _conflicting(path, fcntl.F_WRLCK)
        holders = [holder] if holder else []
    return holders


def writer(path: Path) -> LockHolder | None:
    """The process writing `path` (holding a write lock), if any."""
    return _conflicting(path, fcntl.F_RDLCK)


@contextmanager
def no_writer(path: Path, doing: str) -> Iterator[int]:
    """Hold a read lock on `path` (as a read-only DuckDB connection does) and yield its file
    descriptor: BI readers go on reading, no process can start writing the file, and a process
    already writing it is named in WarehouseLocked. `doing` completes "Cannot ... now".

    POSIX drops every lock a process holds on a file when it closes any descriptor of that file:
    read the file through the yielded descriptor, not by opening it again.
    """
    descriptor = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.fcntl(descriptor, fcntl.F_SETLK, struct.pack(_FLOCK, fcntl.F_RDLCK, os.SEEK_SET,
                                                                0, 0, 0))
        except OSError as error:
            holder = writer(path)
            who = f"{holder}" if holder else f"another process ({error.strerror})"
            raise WarehouseLocked(
                f"Cannot {doing} now: {path} is being written by {who}. Let it finish (or stop "
                f"it), then run again.") from None
        yield descriptor
    finally:
        os.close(descriptor)


def explain_lock_error(message: str, cwd: Path | None = None) -> str | None:
    """A plain sentence for DuckDB's "Could not set lock on file" error in `message` (the
    output of dbt or a duckdb exception; `cwd`: the directory a relative path in it is
    relative to), naming every process that holds the file; None when `message` is about
    something else."""
    found = DUCKDB_LOCK_ERROR.search(message)
    if not found:
        return None
    path = Path(cwd or "") / found["path"]
    holders = [str(holder) for holder in lock_holders(path)]
    if not holders and found["pid"]:  # gone since: what DuckDB saw
        holders = [f"process {found['pid']} ({Path(found['program']).name})"]
    who = ", ".join(holders) or "another process (it has closed the file since)"
    return (f"{path} is open in {who}. DuckDB lets a process write a file only while no other "
            "process has it open, and read it only while none writes it: close that connection "
            "(or wait for it to finish), then run again.")


def _conflicting(path: Path, lock_type: int) -> LockHolder | None:
    """The lock F_GETLK finds in the way of taking `lock_type` on the whole file."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        answer = fcntl.fcntl(descriptor, fcntl.F_GETLK,
                             struct.pack(_FLOCK, lock_type, os.SEEK_SET, 0, 0, 0))
    except OSError:
        return None
    finally:
        os.close(descriptor)
    held, _, _, _, pid = struct.unpack(_FLOCK, answer)
    if held == fcntl.F_UNLCK:
        return None
    return LockHolder(pid, held == fcntl.F_WRLCK, program(pid))


def _proc_locks(stat: os.stat_result) -> list[LockHolder] | None:
    """Lines such as `1: POSIX  ADVISORY  READ 4242 fe:00:2146420 0 EOF` (pid, device, inode)."""
    file_id = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    holders: dict[int, LockHolder] = {}
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[5] != file_id:
            continue  # "->" marks a process waiting for the lock, not holding it
        pid = int(fields[4])
        if pid != os.getpid():
            writes = fields[3] == "WRITE" or (pid in holders and holders[pid].writes)
            holders[pid] = LockHolder(pid, writes, program(pid))
    return list(holders.values())


def program(pid: int) -> str:
    """A process's command line, short: `dbt build --select x`, `python3.11 -c ...`."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        try:
            import psutil

            argv = psutil.Process(pid).cmdline()
        except Exception:  # noqa: BLE001 - a process we cannot inspect is still named by its PID
            return "program unknown"
    argv = [arg for arg in argv if arg]
    if not argv:
        return "program unknown"
    names = [Path(argv[0]).name, *argv[1:]]
    if names[0].startswith("python") and len(names) > 1 and not names[1].startswith("-"):
        names = [Path(names[1]).name, *names[2:]]  # a script: `dbt build`, not `python .../dbt`
    text = " ".join(" ".join(name.split()) for name in names)  # one line, even for `-c` code
    return text if len(text) <= 80 else text[:77] + "..."
