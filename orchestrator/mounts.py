"""Whether the workspace lies on a network file system, read from the kernel's mount table.

The journal is SQLite in write-ahead-log mode: its readers and writers share an index in memory
(`-shm`, a mapped file) and take POSIX locks. Over NFS, SMB and their kin, locks are unreliable
and the shared memory is not shared between hosts, so two processes can both believe they hold
a job and a journal can be damaged (SQLite's documentation says so for WAL mode). That cannot be
fixed from here; the user is told once, when the journal is opened, and the run goes on.

Linux only (`/proc/self/mountinfo`); elsewhere nothing is known and nothing is said.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = [
    "MOUNTINFO",
    "NETWORK_TYPES",
    "file_system_of",
    "network_file_system",
    "shared_warning",
]

MOUNTINFO = Path("/proc/self/mountinfo")
NETWORK_TYPES = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "drvfs", "ceph",
        "glusterfs", "lustre", "gpfs", "beegfs", "orangefs", "davfs", "fuse.sshfs",
        "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse", "fuse.glusterfs", "fuse.davfs2",
        "fuse.juicefs", "fuse.goofys", "fuse.mountpoint-s3",
    }
)  # fmt: skip
"""File system types whose locks or shared memory SQLite cannot rely on (9p and drvfs: WSL's
view of Windows drives)."""
_ESCAPED = re.compile(r"\\([0-7]{3})")


def network_file_system(path: Path, mountinfo: Path | None = None) -> str | None:
    """The type of the network file system holding `path` (`nfs4`, `cifs`, ...), or None when
    it is a local one or the mount table cannot be read."""
    found = file_system_of(path, mountinfo)
    return found if found in NETWORK_TYPES else None


def shared_warning(root: Path, kind: str) -> str:
    """What the user is told about a workspace at `root` on a network file system `kind`."""
    return (
        f"the workspace {root} is on a network file system ({kind}), where SQLite's locks do "
        "not hold: two processes could both run one job, or the journal be damaged; choose a "
        "workspace on a local disk"
    )


def file_system_of(path: Path, mountinfo: Path | None = None) -> str | None:
    """The type of the file system holding `path` (its nearest existing folder), or None."""
    try:
        table = (mountinfo or MOUNTINFO).read_text(errors="replace")
    except OSError:  # not Linux, or no /proc
        return None
    where = _existing(path)
    best: tuple[int, str] | None = None
    for line in table.splitlines():
        mount_point, fs_type = _parse(line)
        if fs_type is None or not _under(where, mount_point):
            continue
        if best is None or len(mount_point) >= best[0]:  # a later mount hides an earlier one
            best = (len(mount_point), fs_type)
    return None if best is None else best[1]


def _existing(path: Path) -> str:
    """`path` made absolute with its links resolved, or its nearest folder that exists."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    return os.path.realpath(current)


def _parse(line: str) -> tuple[str, str | None]:
    """(mount point, type) of one mountinfo line: `ID PARENT MAJ:MIN ROOT POINT OPTIONS
    [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS`."""
    head, dash, tail = line.partition(" - ")
    fields, after = head.split(), tail.split()
    if not dash or len(fields) < 5 or not after:
        return "", None
    return _ESCAPED.sub(lambda octal: chr(int(octal.group(1), 8)), fields[4]), after[0]


def _under(path: str, mount_point: str) -> bool:
    return path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
