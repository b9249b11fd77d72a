"""One training run per work dir. A run holds an OS-level lock on WORK_DIR/.tsm-run.lock for its
lifetime: flock(2) on POSIX, msvcrt.locking on Windows. The kernel drops such a lock when the process
ends, however it ends (SIGKILL, a crash, a node reboot), so a killed run never leaves a stale lock for
the next one to trip over, which a lock *file* (created, then deleted at exit) would. The holder writes
who it is into the file, so that a refused run can name it."""
import json
import os
import socket
import sys
import time
from pathlib import Path

from ..errors import UserError

LOCK_FILE = ".tsm-run.lock"


class WorkDirBusy(UserError):
    pass


def _try_lock(f):
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class WorkDirLock:
    """with WorkDirLock(work_dir): ... raises WorkDirBusy (exit 2) when another run holds the work dir."""

    def __init__(self, work_dir, resume_hint=None):
        self.work_dir, self.resume_hint, self.file = Path(work_dir), resume_hint, None

    def __enter__(self):
        self.created = [p for p in [self.work_dir, *self.work_dir.parents] if not p.exists()]
        self.work_dir.mkdir(parents=True, exist_ok=True)
        path = self.work_dir / LOCK_FILE
        f = open(path, "a+", encoding="utf-8")
        if not _try_lock(f):
            f.seek(0)
            text = f.read()
            f.close()
            raise WorkDirBusy(f"{self.work_dir} is in use by another training run ({_describe(text)}): two runs "
                              "in one work dir would mix their logs and checkpoints. Give this one its own "
                              "--work-dir, or wait until that run ends and continue it with --resume auto"
                              + (f" ({self.resume_hint})" if self.resume_hint else ""))
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv),
                            "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}) + "\n")
        f.flush()
        self.file = f
        return self

    def __exit__(self, failed, *exc):
        if self.file is not None:
            self.file.close()  # closing the descriptor releases the lock
            self.file = None
        if failed and self.created and {p.name for p in self.work_dir.iterdir()} <= {LOCK_FILE}:
            (self.work_dir / LOCK_FILE).unlink(missing_ok=True)  # a run that never started leaves no folder
            for folder in self.created:
                try:
                    folder.rmdir()
                except OSError:
                    break


def _describe(text):
    try:
        holder = json.loads(text)
        return (f"pid {holder['pid']} on {holder['host']}, started {holder['started']}: "
                f"{holder['command']}")
    except (ValueError, KeyError, TypeError):
        return "a run that has not said who it is yet"
