"""Files that appear complete or not at all, the one way tsm writes its outputs (checkpoints, lists,
exported graphs, videos, pictures, downloads).

    with atomic_path("work_dirs/x/latest.pth") as tmp:
        torch.save(state, tmp)

The block writes a temporary file with a unique name in the target's folder (two processes writing the
same target never share one); only when the block succeeds is it renamed onto the target, so the previous
file stays intact until then and no temporary file outlives an error. A full disk, an exceeded quota or a
read-only file system becomes a DiskFull error (a UserError: exit 2 from the CLI) naming the folder and
the bytes needed.
"""
import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from .errors import UserError

NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


class DiskFull(UserError):
    def __init__(self, path, needed, error):
        folder = Path(path).resolve().parent
        try:
            free = f"{shutil.disk_usage(folder).free / 2 ** 20:.1f} MB free"
        except OSError:
            free = "free space unknown"
        need = f"about {needed / 2 ** 20:.1f} MB needed, " if needed else ""
        what = "the file system is read-only" if error.errno == errno.EROFS else os.strerror(error.errno).lower()
        super().__init__(f"cannot write {path}: {what} in {folder} ({need}{free}); the previous file, if any, is "
                         "intact and nothing partial was left: free some space (or write elsewhere) and run again")
        self.path, self.needed, self.errno = Path(path), needed, error.errno


@cache
def _umask():
    """The process's umask, read without changing it (os.umask would, for a moment, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


class AtomicFile:
    """The temporary file behind a target: `tmp` to write, then commit() (rename onto the target) or
    discard(). For writers that outlive one block (a video written as frames arrive); else atomic_path."""

    def __init__(self, path, needed=None):
        self.path, self.needed = Path(path), needed
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=f".tmp{self.path.suffix}")
        os.close(fd)
        self.tmp = Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would keep colleagues out of a shared folder

    def commit(self):
        try:
            os.replace(self.tmp, self.path)
        finally:
            self.discard()

    def discard(self):
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)

    def failed(self, error):
        """The error to raise for an OSError met while writing: DiskFull where the disk is the reason."""
        self.discard()
        return DiskFull(self.path, self.needed, error) if getattr(error, "errno", None) in NO_SPACE else error


@contextmanager
def atomic_path(path, needed=None):
    """A unique temporary path beside `path` (same suffix, so tools that infer a format from it still
    can), renamed onto `path` when the block succeeds, removed otherwise. needed: the expected size in
    bytes, for the message when the disk is full."""
    target = AtomicFile(path, needed)
    try:
        yield target.tmp
        target.commit()
    except OSError as e:
        error = target.failed(e)
        if error is e:
            raise
        raise error from None
    finally:
        target.discard()


def write_bytes(path, data):
    with atomic_path(path, needed=len(data)) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def copy_file(source, path):
    """`path` becomes a copy of `source`, atomically (a copy, not a link: a damaged one leaves the other
    readable)."""
    with atomic_path(path, needed=os.path.getsize(source)) as tmp:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
