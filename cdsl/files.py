"""Writing folders so that nothing is ever half-written, and locking them while a command writes.

- `staged(final)`: a temporary sibling folder to write into; when the block completes it replaces
  `final` (the old one is removed only after the new one is in place); on any error or interrupt
  it is removed and `final` is untouched. A staging folder left by a killed process (its pid is
  gone) is removed the next time its sibling is staged.
- `locked(folder)`: an exclusive lock (`flock`) on `<parent>/.<name>.lock` while a command writes
  the folder, or a shared one while it only reads; a second writer, or a reader while one writes,
  gets a CdslError naming the other process instead of mixing two runs.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cdsl.errors import CdslError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stage_prefix(final: Path) -> str:
    return f".{final.name}.tmp-"


def remove_stale_stages(final: Path) -> None:
    """Remove staging folders of `final` whose process is gone."""
    if not final.parent.is_dir():
        return
    for path in final.parent.glob(_stage_prefix(final) + "*"):
        pid = path.name[len(_stage_prefix(final)):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder `tmp` to `final`, replacing what was there (the old one is removed
    only after the new one is in place)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _writable_parent(final: Path) -> Path:
    parent = final.parent
    if parent.exists() and not parent.is_dir():
        raise CdslError(f"cannot write {final}: {parent} is a file, not a folder", name=str(final))
    if final.exists() and not final.is_dir():
        raise CdslError(f"cannot write {final}: it is a file, not a folder", name=str(final))
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CdslError(f"cannot create {parent}: {err.strerror}", name=str(final)) from None
    return parent


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """Yield a new temporary folder that replaces `final` when the block completes (see the module docstring)."""
    final = Path(final)
    parent = _writable_parent(final)
    remove_stale_stages(final)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{_stage_prefix(final)}{os.getpid()}-", dir=parent))
    except OSError as err:
        raise CdslError(f"cannot write into {parent}: {err.strerror}", name=str(final)) from None
    try:
        yield tmp
        replace_dir(tmp, final)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
            raise CdslError(f"cannot write {final}: {err.strerror} (nothing was changed)", name=str(final)) from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def locked(folder: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold a lock on `folder` (exclusive to write, shared to read); CdslError if another command holds it."""
    folder = Path(folder)
    parent = _writable_parent(folder) if not shared else folder.parent
    lock_path = parent / f".{folder.name}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        if shared:  # a read-only place: nobody can be writing there through cdsl
            yield
            return
        raise CdslError(f"cannot lock {folder}: {parent} is not writable", name=str(folder)) from None
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise CdslError(f"{folder} is being written by another cdsl command (pid {holder}); "
                            "wait for it to finish, or write another folder", name=str(folder)) from None
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
