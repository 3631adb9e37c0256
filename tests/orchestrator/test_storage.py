"""The workspace layout and atomic writes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from orchestrator.storage import Workspace, atomic_write, remove_stale_tmp, sha256_hex


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.resolve(str(tmp_path / "ws"), {})


def test_resolve_prefers_flag_then_env_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"IMAGEBATCH_WORKSPACE": "from-env"}
    assert Workspace.resolve("from-flag", env).root == tmp_path.resolve() / "from-flag"
    assert Workspace.resolve(None, env).root == tmp_path.resolve() / "from-env"
    assert Workspace.resolve(None, {}).root == tmp_path.resolve() / ".imagebatch"
    assert Workspace.resolve(None, {}).root.is_absolute()
    assert not (tmp_path / ".imagebatch").exists(), "resolve must not create folders"


def test_layout(workspace: Workspace) -> None:
    root = workspace.root
    assert workspace.journal_dir == root / "journal"
    assert workspace.cache_dir == root / "cache"
    assert workspace.job_dir("job-1") == root / "images" / "job-1"
    assert workspace.raw_path("job-1", "page-1", "png") == root / "images/job-1/raw/page-1.png"
    assert workspace.image_path("job-1", "page-1", "jpeg") == root / "images/job-1/page-1.jpg"
    assert workspace.image_path("job-1", "page-1", "webp") == root / "images/job-1/page-1.webp"
    assert workspace.thumb_path("job-1", "p.1") == root / "images/job-1/thumbs/p.1.webp"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\\b", "../x", "a\x00b"])
def test_names_with_separators_are_refused(workspace: Workspace, bad: str) -> None:
    with pytest.raises(ValueError):
        workspace.job_dir(bad)
    with pytest.raises(ValueError):
        workspace.raw_path("job", bad, "png")
    with pytest.raises(ValueError):
        workspace.image_path("job", bad, "png")
    with pytest.raises(ValueError):
        workspace.thumb_path("job", bad)


def test_relative_and_absolute_round_trip(workspace: Workspace) -> None:
    path = workspace.raw_path("job-1", "page-1", "png")
    rel = workspace.relative(path)
    assert rel == "images/job-1/raw/page-1.png"
    assert workspace.absolute(rel) == path


def test_relative_refuses_paths_outside(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not inside"):
        workspace.relative(tmp_path / "elsewhere.png")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".",
        "..",
        "../outside.png",
        "images/../../outside.png",
        "/etc/passwd",
        "images\\..\\..\\x",
        "C:/Windows/x",
        "a\x00b",
    ],
)
def test_absolute_refuses_escapes(workspace: Workspace, bad: str) -> None:
    with pytest.raises(ValueError):
        workspace.absolute(bad)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.bin"
    atomic_write(target, b"first")
    assert target.read_bytes() == b"first"
    atomic_write(target, b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert _leftovers(target.parent) == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_atomic_write_respects_umask(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_old_content_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file.bin"
    atomic_write(target, b"old")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_failed_fsync_removes_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="fsync failed"):
        atomic_write(tmp_path / "file.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_sha256_hex() -> None:
    assert sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(sha256_hex(b"")) == 64


def test_stale_tmp_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "images" / "job-1"
    atomic_write(folder / "raw" / "a.png", b"kept")
    dead = folder / "raw" / ".b.png.999999.0123456789ab.tmp"  # a killed writer's half file
    live = folder / ".c.jpg.4242.0123456789ab.tmp"  # a writer still at work
    old_style = folder / "thumbs" / ".d.webp.0123456789ab.tmp"
    for path in (dead, live, old_style):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    removed = remove_stale_tmp(folder, alive=lambda pid: pid == 4242)
    assert sorted(removed) == sorted([dead, old_style])
    assert live.exists() and (folder / "raw" / "a.png").read_bytes() == b"kept"
    assert remove_stale_tmp(tmp_path / "missing", alive=lambda pid: False) == []


def test_atomic_write_names_its_temporary_file_after_its_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str | Path, dst: str | Path) -> None:
        seen.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write(tmp_path / "x.png", b"data")
    assert seen and f".x.png.{os.getpid()}." in seen[0]


def test_only_durable_writes_are_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    atomic_write(tmp_path / "raw.png", b"paid for")
    assert len(synced) == 2  # the file, then its folder
    atomic_write(tmp_path / "thumb.webp", b"made again from the raw file", durable=False)
    assert len(synced) == 2
    assert (tmp_path / "thumb.webp").read_bytes() == b"made again from the raw file"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_post_processing_syncs_nothing_it_can_make_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.imaging import postprocess
    from orchestrator.spec import OutputSpec
    from orchestrator.testing.scripted import png_bytes

    raw = tmp_path / "raw.png"
    raw.write_bytes(png_bytes())
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    done = postprocess(raw, tmp_path / "a.jpg", tmp_path / "thumbs" / "a.webp", OutputSpec())
    assert done.image_path.is_file() and done.thumb_path.is_file() and synced == []


def test_a_planted_link_below_the_workspace_is_never_followed(tmp_path: Path) -> None:
    from orchestrator.storage import make_folders

    root, outside = tmp_path / "ws", tmp_path / "outside"
    outside.mkdir()
    (root / "images").mkdir(parents=True)
    (root / "images" / "job-1").symlink_to(outside)
    with pytest.raises(PermissionError, match=r"job-1 is a symbolic link; imagebatch writes"):
        atomic_write(root / "images" / "job-1" / "raw" / "a.png", b"paid for", root=root)
    with pytest.raises(PermissionError, match="is a symbolic link"):
        make_folders(root, root / "images" / "job-1" / "thumbs")
    (root / "images" / "file").write_bytes(b"")
    with pytest.raises(PermissionError, match="is not a folder"):
        make_folders(root, root / "images" / "file" / "raw")
    assert list(outside.iterdir()) == []
    # the workspace itself may be a link to where it is kept
    (tmp_path / "alias").symlink_to(root)
    atomic_write(tmp_path / "alias" / "images" / "job-2" / "a.png", b"ok", root=tmp_path / "alias")
    assert (root / "images" / "job-2" / "a.png").read_bytes() == b"ok"


def test_folders_are_made_from_the_root_down_whatever_form_the_path_has(tmp_path: Path) -> None:
    """`make_folders` walks strings (it runs for every file written): a string, a path with a
    doubled separator or a `.` in it, and the root itself all give what `pathlib` gives."""
    from orchestrator.storage import make_folders

    root = tmp_path / "ws"
    root.mkdir()
    make_folders(root, f"{root}/images/job-1/raw")
    make_folders(root, f"{root}//images/./job-1/thumbs")
    make_folders(root, root)
    assert sorted(p.name for p in (root / "images" / "job-1").iterdir()) == ["raw", "thumbs"]
    assert [p.name for p in root.iterdir()] == ["images"]
    with pytest.raises(ValueError):
        make_folders(root, tmp_path / "elsewhere")
    with pytest.raises(ValueError):
        make_folders(root, f"{root}-twin/images")  # the root's name as a prefix is not inside
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "ws-twin").exists()


@pytest.mark.parametrize(
    "place",
    [
        "journal",
        "cache",
        "images",
        "references",
        "logs",
        "journal/journal.sqlite3",
        "journal/journal.sqlite3-wal",
        "journal/journal.sqlite3-shm",
        "cache/cache.db",
        "quota.sqlite",
        "quota.sqlite-shm",
    ],
)
def test_a_workspace_with_a_link_planted_at_its_folders_or_databases_is_refused(
    tmp_path: Path, place: str
) -> None:
    """SQLite, diskcache and plain folders follow links: the workspace is checked once, when
    it is prepared, before any of them opens anything."""
    from orchestrator.errors import ConfigError

    root, outside = tmp_path / "ws", tmp_path / "outside"
    outside.mkdir()
    (outside / "db").write_bytes(b"")
    link = root / place
    link.parent.mkdir(parents=True)
    link.symlink_to(outside if "." not in place else outside / "db")
    with pytest.raises(ConfigError, match=f"{place} is a symbolic link"):
        Workspace(root).prepare()
    assert sorted(p.name for p in outside.iterdir()) == ["db"]
    assert (outside / "db").read_bytes() == b""


def test_fetched_references_are_kept_without_following_a_planted_link(tmp_path: Path) -> None:
    from orchestrator.reference_urls import Fetched, keep_fetched
    from orchestrator.spec import parse_spec

    root, outside = tmp_path / "ws", tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "references").symlink_to(outside)
    url = "https://example.com/a.png"
    spec = parse_spec(
        {"key": "k", "items": [{"id": "a", "prompt": "x", "references": [url]}]}, "spec"
    )
    with pytest.raises(PermissionError, match="references is a symbolic link"):
        keep_fetched(spec, {url: Fetched(b"png bytes", "png")}, root / "references")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("place", ["journal/journal.sqlite3", "quota.sqlite", "cache/cache.db"])
def test_a_fifo_in_place_of_a_database_is_refused(tmp_path: Path, place: str) -> None:
    """SQLite fails on a FIFO with "disk I/O error" (the journal's: a traceback), so it is
    refused first, as a link is."""
    from orchestrator.errors import ConfigError

    root = tmp_path / "ws"
    (root / place).parent.mkdir(parents=True)
    os.mkfifo(root / place)
    with pytest.raises(ConfigError, match=f"{place} is not a regular file"):
        Workspace(root).prepare()
