"""Atomic file output: write to a temporary file beside the target, then rename.

A crash or a user error mid-write never leaves a half-written output behind. Files get the
permissions an ordinary ``open()`` would give (``0o666`` less the umask: ``0644`` by default),
not :func:`tempfile.mkstemp`'s private ``0600``.

:func:`transaction` makes a whole run one unit: every file the run writes through
:func:`atomic_path` is recorded, and if the run fails (any exception, Ctrl-C included) the
files it created are removed, the files it replaced are restored and the folders it made are
removed again — nothing from the failed run is left in the output folder, except a file
written ``durable`` (a sampled posterior: the next run reuses it instead of sampling again).

:func:`recording` collects the files a block writes; :func:`remove_outputs` removes files
(inside a transaction: undone if the run fails) and the folders that leave empty. The report
uses them to leave in an analysis folder exactly what its run wrote
(:func:`biasstats.run.analysis.tidy_outputs`).

An output that cannot be written (the folder is a file, no permission, a read-only file
system, the disk is full) is an :class:`OutputError`: one line naming the path and the reason.
"""

from __future__ import annotations

import contextvars
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from biasstats.errors import BiasstatsError
from biasstats.names import neutralise_frame


class OutputError(BiasstatsError):
    """An output file or folder cannot be written (permissions, disk full, not a folder)."""


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def file_mode() -> int:
    """The mode a newly created file gets under this process's umask (``0o644`` for 022)."""
    return 0o666 & ~_UMASK


def _reason(e: OSError, path: Path) -> str:
    if e.errno in (errno.ENOTDIR, errno.EEXIST) or (
            isinstance(e, FileExistsError | NotADirectoryError)):
        for p in (path, *path.parents):
            if p.exists() and not p.is_dir():
                return f"{p} is a file, not a folder"
    if e.errno == errno.ENOSPC:
        return "no space left on the device"
    return e.strerror or type(e).__name__


#: errors of a full disk, quota or file-size limit: wherever they happen, one line
STORAGE_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def storage_error(e: OSError, what: str) -> OutputError:
    """The one-line error for a full disk met while writing ``what`` (a file biasstats does
    not name itself: a library's cache, a temporary file)."""
    where = e.filename or what
    return OutputError(f"cannot write {where}: {_reason(e, Path(str(where)))} (the disk, the "
                       "quota or the file-size limit is full)")


def output_error(e: OSError, target: Path) -> OutputError:
    return OutputError(f"cannot write {target}: {_reason(e, target.parent)}")


def backup_name(target: Path) -> Path:
    """Where a run keeps ``target``'s previous content until it commits."""
    return target.with_name(f".{target.name}.{os.getpid()}.bak")


# the names atomic_path's temporary files and a run's backups have: a killed run leaves them
TEMP_NAME = re.compile(r"^\..+\.(?:[a-z0-9_]{8}\.tmp|\d+\.bak)$")


class _Transaction:
    def __init__(self) -> None:
        self.created: list[Path] = []              # files that did not exist before the run
        self.backups: list[tuple[Path, Path]] = []  # (target, copy of its previous content)
        self.dirs: list[Path] = []                  # folders the run made, outermost first
        self.prune: list[Path] = []                 # folders to remove on commit if empty
        self._seen: set[Path] = set()

    def mkdirs(self, folder: Path) -> None:
        missing = []
        p = folder
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        folder.mkdir(parents=True, exist_ok=True)
        self.dirs += [d for d in reversed(missing) if d not in self.dirs]

    def before_replace(self, target: Path) -> None:
        key = Path(os.path.abspath(target))
        if key in self._seen:
            return
        self._seen.add(key)
        if not target.exists():
            self.created.append(target)
            return
        backup = backup_name(target)
        try:
            os.link(target, backup)
        except OSError:
            shutil.copy2(target, backup)
        self.backups.append((target, backup))

    def remove(self, target: Path) -> None:
        """Set ``target`` aside (restored by a rollback, deleted by the commit); a file this
        run wrote is kept."""
        key = Path(os.path.abspath(target))
        if key in self._seen:
            return
        self._seen.add(key)
        backup = backup_name(target)
        os.replace(target, backup)
        self.backups.append((target, backup))

    def pending(self) -> set[str]:
        """This run's backups: not stale, whatever their name says."""
        return {os.path.abspath(b) for _, b in self.backups}

    def commit(self) -> None:
        for _, backup in self.backups:
            backup.unlink(missing_ok=True)
        _prune(self.prune)

    def rollback(self) -> None:
        for f in self.created:
            f.unlink(missing_ok=True)
        for target, backup in self.backups:
            if backup.exists():
                os.replace(backup, target)
        for d in reversed(self.dirs):
            try:
                d.rmdir()
            except OSError:  # not empty (someone else's files) or already gone
                pass


_RUN: contextvars.ContextVar[_Transaction | None] = contextvars.ContextVar(
    "biasstats_output_run", default=None)
_RECORDERS: contextvars.ContextVar[tuple[set[str], ...]] = contextvars.ContextVar(
    "biasstats_output_recorders", default=())


@contextmanager
def recording() -> Iterator[set[str]]:
    """Collect the absolute path of every file written through :func:`atomic_path` inside the
    block (nested blocks each see their own writes and their inner blocks')."""
    written: set[str] = set()
    token = _RECORDERS.set((*_RECORDERS.get(), written))
    try:
        yield written
    finally:
        _RECORDERS.reset(token)


def pending_backups() -> set[str]:
    """The backups the current transaction keeps (absolute paths); empty outside one."""
    run = _RUN.get()
    return run.pending() if run is not None else set()


def _prune(folders: list[Path]) -> None:
    """Remove each folder (deepest first) if it is empty."""
    for d in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()
        except OSError:  # not empty, or gone
            pass


def remove_outputs(files, root: Path) -> None:
    """Remove ``files`` and then the folders below ``root`` that they leave empty. Inside a
    :func:`transaction` a removal is undone if the run fails (and the folders are removed
    when it commits)."""
    root = Path(os.path.abspath(root))
    run = _RUN.get()
    folders: list[Path] = []
    for f in files:
        f = Path(os.path.abspath(f))
        try:
            if run is not None:
                run.remove(f)
            else:
                f.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise OutputError(f"cannot remove {f}: {_reason(e, f.parent)}") from None
        folders += [d for d in f.parents if d != root and d.is_relative_to(root)]
    if run is not None:
        run.prune += folders
    else:
        _prune(folders)


@contextmanager
def transaction() -> Iterator[None]:
    """Make every :func:`atomic_path` write inside the block one unit (see module doc).

    Nested blocks join the outermost one."""
    if _RUN.get() is not None:
        yield
        return
    run = _Transaction()
    token = _RUN.set(run)
    try:
        yield
    except BaseException:
        run.rollback()
        raise
    else:
        run.commit()
    finally:
        _RUN.reset(token)


def make_folder(folder: str | os.PathLike) -> Path:
    """``mkdir -p`` that a failing run's :func:`transaction` removes again; OutputError if
    the folder cannot be made."""
    folder = Path(folder)
    run = _RUN.get()
    try:
        if run is not None:
            run.mkdirs(folder)
        else:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create folder {folder}: {_reason(e, folder)}") from None
    return folder


@contextmanager
def atomic_path(target: str | os.PathLike, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success.

    ``durable``: the file outlives a failing :func:`transaction` (it is not undone on
    rollback): a sampled posterior is kept even when a later stage of its run fails."""
    target = Path(target)
    make_folder(target.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise output_error(e, target) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())
        run = _RUN.get()
        if run is not None and not durable:
            run.before_replace(target)
        os.replace(tmp_path, target)
        for written in _RECORDERS.get():
            written.add(os.path.abspath(target))
    except BaseException as e:
        tmp_path.unlink(missing_ok=True)
        os_error = _as_os_error(e)
        if os_error is not None:
            raise output_error(os_error, target) from None
        raise


# polars: "... (os error 28)"; h5py/HDF5 (NetCDF): "... errno = 28, error message = ..."
_OS_ERROR_IN_MESSAGE = re.compile(r"\(os error (\d+)\)|\berrno = (\d+)")


def _as_os_error(e: BaseException) -> OSError | None:
    """``e`` as an OSError: itself, or a library error wrapping one — polars reports a full
    disk as ``ComputeError: ... No space left on device (os error 28)``, h5py (NetCDF) as
    ``RuntimeError: ... errno = 28, error message = 'No space left on device'``."""
    if isinstance(e, OSError):
        return e
    if isinstance(e, Exception):
        m = _OS_ERROR_IN_MESSAGE.search(str(e))
        if m:
            code = int(m.group(1) or m.group(2))
            return OSError(code, os.strerror(code))
    return None


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_parquet_atomic(target: str | os.PathLike, frame,
                         metadata: dict[str, str] | None = None) -> Path:
    """Write a polars DataFrame as Parquet, atomically (``metadata``: the file's key-value
    metadata, read back with ``polars.read_parquet_metadata``)."""
    with atomic_path(target) as tmp:
        frame.write_parquet(tmp, metadata=metadata)
    return Path(target)


def write_csv_atomic(target: str | os.PathLike, frame) -> Path:
    """Write a polars DataFrame as CSV, atomically, with every text cell a spreadsheet would
    run as a formula (``=…``, ``+…``, ``-…``, ``@…``) made text by a leading ``'``
    (:func:`biasstats.names.neutralise_frame`): every CSV biasstats writes goes through here."""

    with atomic_path(target) as tmp:
        neutralise_frame(frame).write_csv(tmp)
    return Path(target)
