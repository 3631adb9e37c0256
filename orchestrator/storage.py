"""The workspace folder and atomic file writes.

```
<root>/journal/                                SQLite: jobs, items, events, locks
<root>/cache/                                  diskcache: the result cache's index and links
<root>/images/<job_id>/raw/<item_id>.<ext>     bytes exactly as the provider sent them
<root>/images/<job_id>/<item_id>.<fmt>         the processed image
<root>/images/<job_id>/thumbs/<item_id>.webp   the thumbnail
```

Everything here blocks: the pipeline calls it from threads and from its store worker processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import ConfigError, UnusableFileError, storage_errors

__all__ = [
    "ENV_VAR",
    "Workspace",
    "atomic_write",
    "make_folders",
    "read_regular",
    "remove_stale_tmp",
    "sha256_hex",
]

ENV_VAR = "IMAGEBATCH_WORKSPACE"
DEFAULT_DIR = ".imagebatch"
_FOLDERS = ("journal", "cache", "images", "references", "logs")
_DATABASES = ("journal/journal.sqlite3", "cache/cache.db", "quota.sqlite")
_PLACES = _FOLDERS + tuple(
    f"{db}{tail}" for db in _DATABASES for tail in ("", "-wal", "-shm", "-journal")
)
"""What the workspace keeps at fixed places. SQLite, diskcache and `open` follow a link planted
at any of them, so `prepare` refuses the workspace while one is there."""


def _check_name(name: str, what: str) -> str:
    """Refuse a name that could leave its folder once it becomes part of a path."""
    if not name or name in {".", ".."} or any(ch in name for ch in "/\\\x00"):
        raise ValueError(f"{what} {name!r} cannot be used as a file name")
    return name


@dataclass(frozen=True, slots=True)
class Workspace:
    """The one folder that holds a user's journal, result cache and images."""

    root: Path

    @classmethod
    def resolve(cls, cli_value: str | None, env: Mapping[str, str]) -> Workspace:
        """`--workspace`, else `$IMAGEBATCH_WORKSPACE`, else `./.imagebatch`; made absolute.

        Creates nothing: commands that only read must not leave folders behind.
        """
        value = cli_value or env.get(ENV_VAR) or DEFAULT_DIR
        return cls(Path(value).expanduser().resolve())

    def prepare(self) -> None:
        """Make the workspace folder, or raise `ConfigError` saying why it cannot be one.

        The parent folder must exist already: a mistyped path should not grow a tree of folders.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise ConfigError(
                f"workspace {root} is a file, not a folder; choose a folder", option="workspace"
            )
        if not root.exists() and not root.parent.is_dir():
            raise ConfigError(
                f"workspace {root}: its parent folder {root.parent} does not exist; "
                "create it first or choose another workspace",
                option="workspace",
            )
        folder = root if root.exists() else root.parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(
                f"workspace {root}: {folder} is not writable; choose a folder you can write to",
                option="workspace",
            )
        try:
            root.mkdir(exist_ok=True)
            self._refuse_links()
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise ConfigError(f"workspace {root}: cannot use it ({reason})") from None

    def _refuse_links(self) -> None:
        """`ConfigError` if a symbolic link stands at one of the workspace's fixed places, a
        file where a folder belongs, or anything but a file (a FIFO) where a database does."""
        for place in _PLACES:
            try:
                mode = os.lstat(self.root / place).st_mode
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(mode):
                raise ConfigError(
                    f"workspace {self.root}: {place} is a symbolic link; imagebatch writes only "
                    "inside its workspace: remove it and run again"
                )
            if place in _FOLDERS and not stat.S_ISDIR(mode):
                raise ConfigError(f"workspace {self.root}: {place} is a file, not a folder")
            if place not in _FOLDERS and not stat.S_ISREG(mode):  # a FIFO: SQLite fails on it
                raise ConfigError(f"workspace {self.root}: {place} is not a regular file")

    @property
    def journal_dir(self) -> Path:
        return self.root / "journal"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def references_dir(self) -> Path:
        """Reference images fetched from URLs, by content hash."""
        return self.root / "references"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    def job_dir(self, job_id: str) -> Path:
        """`images/<job_id>`."""
        return self._in_job(job_id)

    def raw_path(self, job_id: str, item_id: str, ext: str) -> Path:
        """`images/<job_id>/raw/<item_id>.<ext>`: the bytes as received."""
        name = f"{_check_name(item_id, 'item id')}.{_check_name(ext, 'extension')}"
        return self._in_job(job_id, "raw", name)

    def image_path(self, job_id: str, item_id: str, fmt: str) -> Path:
        """`images/<job_id>/<item_id>.<ext>`: the processed image (`jpeg` is written `.jpg`)."""
        ext = "jpg" if fmt == "jpeg" else fmt
        name = f"{_check_name(item_id, 'item id')}.{_check_name(ext, 'format')}"
        return self._in_job(job_id, name)

    def thumb_path(self, job_id: str, item_id: str) -> Path:
        """`images/<job_id>/thumbs/<item_id>.webp`."""
        return self._in_job(job_id, "thumbs", f"{_check_name(item_id, 'item id')}.webp")

    def _in_job(self, job_id: str, *names: str) -> Path:
        """A path in `images/<job_id>`, made as one string: a store worker makes three for
        every image, and joining `Path`s one name at a time parsed each again."""
        job = _check_name(job_id, "job id")
        return Path(os.path.join(str(self.root), "images", job, *names))

    def relative(self, path: Path) -> str:
        """`path` as a posix path relative to the root, the form the journal stores."""
        text, prefix = str(path), f"{self.root}{os.sep}"
        if os.sep == "/" and text.startswith(prefix):
            return text[len(prefix) :]  # what `relative_to` gives, without parsing the path
        try:
            rel = Path(path).relative_to(self.root)
        except ValueError:
            raise ValueError(f"{path} is not inside the workspace {self.root}") from None
        return rel.as_posix()

    def absolute(self, rel: str) -> Path:
        """The inverse of `relative`; refuses anything that would point outside the root."""
        pure = PurePosixPath(rel)
        if (
            not rel
            or "\x00" in rel
            or "\\" in rel
            or pure.is_absolute()
            or PureWindowsPath(rel).drive
            or ".." in pure.parts
            or pure == PurePosixPath(".")
        ):
            raise ValueError(f"{rel!r} is not a path inside the workspace")
        return self.root.joinpath(*pure.parts)


def read_regular(path: Path, limit: int) -> bytes:
    """A regular file's bytes, read only if it is one and holds at most `limit` bytes; else
    `UnusableFileError`. Opened without blocking: a FIFO put in a file's place would wait for
    a writer forever, deaf to signals."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnusableFileError(f"{path.name} is not a regular file (a pipe or a device?)")
        data = file.read(limit + 1)
    if len(data) > limit or info.st_size > limit:
        message = f"{path.name} is larger than {limit // (1024 * 1024)} MB"
        raise UnusableFileError(message, too_large=True)
    return data


def make_folders(root: Path, folder: str | Path) -> None:
    """Create `folder` and the folders above it, up to `root`, refusing any that is a symbolic
    link or not a folder: a link planted at `images/<job>` or `raw/` would take the writes
    that follow outside the workspace. `root` itself may be a link (a workspace kept
    elsewhere)."""
    current = str(root)
    for part in _below(current, os.fspath(folder)):
        current = os.path.join(current, part)  # strings: this runs for every file written
        try:
            found = os.lstat(current)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.mkdir(current)
            found = os.lstat(current)
        if not stat.S_ISDIR(found.st_mode):  # lstat: a link to a folder is a link
            kind = "a symbolic link" if stat.S_ISLNK(found.st_mode) else "not a folder"
            raise PermissionError(
                f"{current} is {kind}; imagebatch writes only inside its workspace "
                f"{root}: remove it and run again"
            )


def _below(root: str, folder: str) -> tuple[str, ...]:
    """The names from `root` down to `folder`; `ValueError` if `folder` is not in `root`."""
    prefix = root if root.endswith(os.sep) else root + os.sep
    names = folder[len(prefix) :].split(os.sep) if folder.startswith(prefix) else [""]
    if folder == root or "" in names or "." in names:  # not a plain path below: as pathlib has it
        return Path(folder).relative_to(root).parts
    return tuple(names)


def atomic_write(
    path: Path, data: bytes, *, durable: bool = True, root: Path | None = None
) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half.

    Parent folders are created. The bytes go to a temporary file in the same folder, are
    flushed to disk, then renamed over `path`; the folder is synced so the rename survives a
    crash. On any failure the temporary file is removed and the error re-raised.

    With `root` (the workspace), the folders from there down are made by `make_folders`,
    so no symbolic link on the way is followed. `durable=False` skips both syncs, for files
    that can be made again from a durable one (a processed image and its thumbnail, from the
    raw image): a killed process still leaves the old file or the new one, and only a power
    cut can lose the new one.
    """
    with storage_errors(root or path.parent):  # the workspace, not this file: the run stops
        _write_then_rename(path, data, durable, root)


def _write_then_rename(path: Path, data: bytes, durable: bool, root: Path | None) -> None:
    folder, name = os.path.split(os.fspath(path))  # strings: this runs for every file written
    if root is None:
        os.makedirs(folder, exist_ok=True)
    else:
        make_folders(root, folder)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as handle:  # created 0o666 less the umask, as any new file
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(folder)


def remove_stale_tmp(folder: Path, alive: Callable[[int], bool]) -> list[Path]:
    """Remove the temporary files that writers which died left under `folder` (a killed
    process's half-written image); a live writer's file is left alone. Returns what went."""
    removed = []
    for tmp in folder.rglob(".*.tmp") if folder.is_dir() else ():
        parts = tmp.name.rsplit(".", 3)  # .<name>.<pid>.<hex>.tmp
        pid = int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else 0
        if not alive(pid):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _fsync_dir(folder: str | Path) -> None:
    """Make a rename in `folder` durable (POSIX only; Windows cannot open folders)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of `data` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()
