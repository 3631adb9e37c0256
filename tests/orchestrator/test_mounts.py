"""A workspace on a network file system is told about once, when its journal is opened."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator import mounts
from orchestrator.mounts import file_system_of, network_file_system

from ..cli_helpers import inproc, write_spec


def mount_table(tmp_path: Path, *lines: str) -> Path:
    """A mountinfo file: the root on ext4, then `lines` (mount point, type)."""
    rows = ["22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw"]
    for n, line in enumerate(lines):
        point, kind = line.rsplit(" ", 1)
        escaped = point.replace(" ", "\\040")
        rows.append(f"{40 + n} 22 0:{50 + n} / {escaped} rw,relatime - {kind} server:/x rw")
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_the_file_system_is_the_nearest_mount_above_the_path(tmp_path: Path) -> None:
    share, other = tmp_path / "my share", tmp_path / "local"
    (share / "inner").mkdir(parents=True)
    other.mkdir()
    table = mount_table(
        tmp_path,
        f"{share} nfs4",
        f"{share / 'inner'} ext4",  # a local disk mounted inside the share
        f"{other} cifs",
        f"{other} xfs",  # mounted later over the same place: it hides the cifs one
    )
    assert file_system_of(share / "ws", table) == "nfs4"  # not made yet: its folder decides
    assert network_file_system(share / "ws" / "deeper", table) == "nfs4"
    assert network_file_system(share / "inner" / "ws", table) is None
    assert network_file_system(other, table) is None
    assert file_system_of(tmp_path / "my", table) == "ext4"  # a prefix is not a parent
    assert network_file_system(tmp_path, tmp_path / "no-such-table") is None


def test_9p_and_sshfs_are_network_ones_and_a_link_is_followed(tmp_path: Path) -> None:
    mnt, fuse = tmp_path / "c", tmp_path / "remote"
    mnt.mkdir()
    fuse.mkdir()
    (tmp_path / "link").symlink_to(fuse)
    table = mount_table(tmp_path, f"{mnt} 9p", f"{fuse} fuse.sshfs")
    assert network_file_system(mnt / "ws", table) == "9p"  # WSL's /mnt/c
    assert network_file_system(tmp_path / "link" / "ws", table) == "fuse.sshfs"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/mountinfo is Linux's")
def test_this_machines_own_table(tmp_path: Path) -> None:
    assert file_system_of(Path("/proc/self")) == "proc"
    assert network_file_system(tmp_path) is None


def test_the_command_line_warns_once_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, spec = tmp_path / "ws", write_spec(tmp_path, items=2)
    monkeypatch.setattr(mounts, "MOUNTINFO", mount_table(tmp_path, f"{tmp_path} nfs4"))
    done = inproc(ws, "run", str(spec), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"imagebatch: warning: the workspace {ws} is on a network file system (nfs4), where "
        "SQLite's locks do not hold: two processes could both run one job, or the journal be "
        "damaged; choose a workspace on a local disk"
    ]
    monkeypatch.setattr(mounts, "MOUNTINFO", mount_table(tmp_path, f"{tmp_path} ext4"))
    assert "warning" not in inproc(ws, "list").stderr
