"""One process at a time per output folder: an exclusive lock that the operating system releases.

Two processes writing one run folder interleave ``metrics.jsonl``, overwrite each other's
``config.json``, checkpoints and features, and both report success. Every command that writes a run
or an output folder (``avssl pretrain``, ``sweep``, ``demo``, ``extract`` and the ``eval`` commands)
therefore holds an exclusive lock on ``<folder>/.avssl.lock`` while it works: ``flock`` on an open
file, which the kernel drops when the process ends however it ends (exit, exception, SIGKILL, a
crash), so a killed run never blocks its own ``--resume``. The file holds the holder's pid, host,
start time and command as text, which a second process quotes when it refuses.

The lock file stays in the folder after a run (removing it would let two processes hold locks on
two different files of the same name); a folder this lock created and that received nothing else
is removed again, so a command refused before any work leaves no empty folder behind.
"""
from __future__ import annotations

import errno
import functools
import inspect
import logging
import os
import socket
import sys
from datetime import datetime
from pathlib import Path

from .errors import AvsslError, ConfigError

try:  # POSIX; on other systems the lock is a no-op with a warning
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger("avssl.runlock")

LOCK_NAME = ".avssl.lock"
_HELD: dict[str, int] = {}  # folders this process holds: a nested lock of the same folder is granted
_FDS: set[int] = set()  # the open lock files of this process


def _forget_in_child() -> None:
    """In a forked child (DataLoader workers, probe workers): close its copies of the lock files. The lock
    belongs to the open file, shared with the parent: closing a copy keeps the parent's lock, and without
    it a SIGKILLed parent's lock would live on until its workers noticed and exited."""
    for fd in _FDS:
        try:
            os.close(fd)
        except OSError:
            pass
    _FDS.clear()
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


class FolderInUse(AvsslError):
    """Another process holds the lock of the folder (``holder``: what it wrote: pid, host, started...)."""

    def __init__(self, folder, holder: dict):
        self.folder, self.holder = Path(folder), holder
        if holder.get("pid"):
            who = f"pid {holder['pid']}"
            if holder.get("host") and holder["host"] != socket.gethostname():
                who += f" on host {holder['host']}"
            if holder.get("started"):
                who += f", started {holder['started']}"
            if holder.get("command"):
                who += f": {holder['command']}"
        else:
            who = "a process that is just starting"
        super().__init__(
            f"{folder} is in use by another avssl process ({who}). Two processes must not write one folder: "
            f"wait for that one to finish (or stop it), or choose another output folder. "
            f"The lock goes away by itself when its process ends, even if it is killed.")


def check_output_folder(path, option: str = "--out") -> Path:
    """``path`` as a Path if it is a folder or can become one; a ConfigError naming the problem when it
    is a file, or lies below a file."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{option} {p} is a file, not a folder: give a folder (new or existing) for the results")
    for parent in p.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {p}: {parent} is a file, so no folder can be made inside it")
            break
    return p


class RunLock:
    """The exclusive lock of ``folder`` (created if needed): ``acquire()``/``release()`` or ``with``."""

    def __init__(self, folder, option: str = "--out"):
        self.folder, self.option = Path(folder), option
        self._fd: int | None = None
        self._created = False
        self._nested: str | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def acquire(self) -> "RunLock":
        if self._fd is not None or self._nested is not None:
            return self
        check_output_folder(self.folder, self.option)
        key = os.path.realpath(self.folder)
        if key in _HELD:  # this process holds it already (e.g. retrain-long around its pretraining run)
            _HELD[key] += 1
            self._nested = key
            return self
        self._created = not self.folder.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{self.option} {self.folder}: cannot create the folder ({e.strerror})") from None
        if fcntl is None:  # pragma: no cover
            log.warning("no file locks on this system: make sure no other avssl process writes %s", self.folder)
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            except OSError as e:
                raise ConfigError(f"{self.option} {self.folder}: cannot write into the folder ({e.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise FolderInUse(self.folder, holder) from None
                os.close(fd)  # a file system without locks (some FUSE mounts): carry on, unprotected
                log.warning("cannot lock %s (%s): make sure no other avssl process writes this folder",
                            self.folder, e.strerror)
                return self
            # The file we locked must still be the one under that name: a process that released the lock
            # may have removed it (then our lock is on a dead file, and we take the new one).
            try:
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
            self.folder.mkdir(parents=True, exist_ok=True)
        self._fd, self._pid = fd, os.getpid()
        self._key = os.path.realpath(self.folder)
        _HELD[self._key] = 1
        _FDS.add(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_text().encode("utf-8", "surrogateescape"), 0)
        except OSError:  # a full disk: the lock holds anyway, only the holder's description is missing
            pass
        return self

    def release(self) -> None:
        if self._nested is not None:
            _HELD[self._nested] -= 1
            self._nested = None
            return
        fd, self._fd = self._fd, None
        if fd is None or self._pid != os.getpid():  # a forked child: its copy is already closed
            return
        _HELD.pop(self._key, None)
        _FDS.discard(fd)
        try:
            if self._created and [p.name for p in self.folder.iterdir()] == [LOCK_NAME]:
                self.path.unlink()  # while still locked: a waiting process then sees the file is gone
                self.folder.rmdir()
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the lock

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holding_lock(param: str = "out"):
    """Decorator: hold the lock of the folder passed as argument ``param`` while the function runs."""

    def wrap(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def locked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            with RunLock(bound.arguments[param]):
                return fn(*args, **kwargs)

        return locked

    return wrap


def read_holder(folder) -> dict:
    """What the lock file of ``folder`` says about its (last) holder; {} when there is none."""
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return {}
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def _holder_text() -> str:
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    command = " ".join(["avssl" if program in ("cli.py", "__main__.py") else program, *sys.argv[1:]])
    return f"pid {os.getpid()}\nhost {socket.gethostname()}\nstarted {started}\ncommand {command[:500]}\n"


def _read_holder(fd: int) -> dict:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key in ("pid", "host", "started", "command") and value:
            out[key] = value.strip()
    return out
