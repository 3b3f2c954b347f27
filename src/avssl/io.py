"""Atomic writes and safe loading: every file avssl writes survives a crash, and nothing it loads runs code.

    from avssl.io import atomic_save, atomic_write_text, load_checkpoint, load_array, read_jsonl

Writes go to a temporary file in the same folder, are flushed to disk, then renamed over the target:
a process killed mid-write leaves the previous checkpoint intact (and a temporary file that is never
read, and is removed by the next save of the same file). Loading always uses
``torch.load(weights_only=True)``, so a checkpoint can hold tensors, numbers, strings, lists and dicts
but never arbitrary pickled objects. numpy and torch are imported by the functions that need them, so
the light modules (manifests, the parser) write their files through here too.
"""
from __future__ import annotations

import errno
import glob
import os
import pickle
import re
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CheckpointError, DiskFullError

if TYPE_CHECKING:
    import numpy as np

_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def _no_space(e: BaseException) -> OSError | None:
    """The OSError 'no space left' (or quota, or file size limit) behind ``e``: ``e`` itself, or an
    exception it was raised from (torch.save reports a full disk as RuntimeError 'unexpected pos',
    the real cause chained to it)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _NO_SPACE:
            return e
        e = e.__cause__ or e.__context__
    return None


def atomic_write(path, write) -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it over ``path``: readers
    (and a crash) see the old file or the new one, never half of one. Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_writer_tag()}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file private (0600); results on a shared cluster should be readable like
        # any other file the user writes.
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        full = _no_space(e)
        if full is not None:
            kept = f"the previous {path.name} is intact" if path.exists() else f"{path.name} was not written"
            raise DiskFullError(
                f"{path}: no room to write it ({full.strerror or 'no space left on device'}: the disk is full, "
                f"or a quota or file size limit was reached); {kept}. Free some space on the file system of "
                f"{path.parent} (or choose another output folder) and run the same command again "
                f"(pretraining: with --resume)") from None
        raise
    _fsync_dir(path.parent)
    return path


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()

# Temporary files are named .<target>.<host>-<pid>.<random>.tmp: a writer killed mid-write (SIGKILL, power
# loss) leaves one behind, never read as a checkpoint, and removed by the next save of the same target
# on the same host once its process is gone.
_WRITER = f"{socket.gethostname().replace('.', '_')}-{{pid}}"


def _writer_tag() -> str:
    return _WRITER.format(pid=os.getpid())


def _remove_stale_temporaries(path: Path) -> None:
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?P<host>[^.]+)-(?P<pid>\d+)\.[^.]+\.tmp")
    host = _WRITER.split("-{")[0]
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return
    for tmp in candidates:
        m = pattern.fullmatch(tmp.name)
        if m and m["host"] == host and not process_alive(int(m["pid"])):
            tmp.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj, path) -> Path:
    """``torch.save`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` as UTF-8 atomically. File names that are not valid UTF-8 reach Python as
    surrogate escapes; they are written back as their original bytes (as manifests do), so an index
    listing such a file still names it."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8", "surrogateescape")))


def atomic_save_array(path, array: np.ndarray) -> Path:
    """``np.save`` to ``path`` atomically."""
    import numpy as np

    return atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint or weight file as plain data; a clear error for anything else.

    Only ``torch.load(weights_only=True)`` is ever used: tensors, numbers, strings and containers load;
    a file that would need any other Python object (a pickled class, a function, numpy arrays) is
    refused before anything in it runs."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        head = f.read(32)
    if not head:
        raise CheckpointError(f"{path}: empty file (0 bytes); not a checkpoint")
    if not head.startswith(_ZIP_MAGIC) and _LEGACY_MAGIC not in head:
        if head[:1] == b"\x80":
            raise CheckpointError(
                f"{path}: refused to load: a plain Python pickle, not a file written by torch.save (Caffe2 .pkl "
                f"weights are such pickles); avssl never unpickles arbitrary objects")
        raise CheckpointError(f"{path}: not a checkpoint: neither of torch.save's formats (zip or legacy); "
                              f"the file is corrupt or of another kind")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects other than tensors and plain data "
            f"({_unpickler_reason(e)}), and avssl never unpickles arbitrary objects (nothing in the file was run). "
            f"If you made the file yourself, save plain data instead, e.g. model.state_dict()"
        ) from None
    except Exception as e:  # noqa: BLE001 - torch reports corrupt files as RuntimeError, EOFError, KeyError...
        reason = str(e).split(". ")[0].strip() or type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint: truncated or corrupt "
                              f"({type(e).__name__}: {reason})") from None


# torch.save's zip format, and its legacy format, which starts by pickling a magic number.
_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _unpickler_reason(e: Exception) -> str:
    """What the weights-only unpickler refused, named (e.g. 'the global posix.system, whose module
    is blocked' or 'the global __main__.Evil'), without torch's advice to retry with weights_only=False.

    torch's message wraps the unpickler's own reason in advice that changes between versions (2.13:
    'Re-running torch.load with weights_only set to False will likely succeed' first, the reason
    after it); the reason is found by its content, and no line of the advice is ever passed on."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    m = re.search(r"GLOBAL (\S+?)(?: was not an allowed global| whose module (\S+) is blocked|[\s.]*$)", text, re.M)
    if m:
        name = m.group(1).rstrip(".")
        if m.group(2):
            return f"the global {name}, whose module {m.group(2).rstrip('.')} is blocked"
        return f"the global {name}"
    m = re.search(r"unrecognized function (\S+)", text)
    if m:
        return f"a call of {m.group(1).rstrip('.')}"
    advice = ("weights_only", "weights only", "torch.load", "add_safe_globals", "safe_globals", "documentation",
              "file an issue", "trust", "http")
    for line in text.splitlines():
        line = line.strip()
        if "WeightsUnpickler error:" in line:
            line = line.split("WeightsUnpickler error:", 1)[1].strip()
        if line and not any(a in line.lower() for a in advice):
            return line.rstrip(".")
    return "unsupported pickle content"


def load_array(path, what: str = "array") -> np.ndarray:
    """A ``.npy`` file as a plain numeric array, never unpickling: a file holding pickled Python objects
    (an object array, or a pickle saved under a .npy name) is refused before anything in it runs."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what} file")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower() or "object arrays" in str(e).lower():
            raise CheckpointError(
                f"{path}: refused to load: the file holds pickled Python objects, not a plain numeric {what}; "
                f"avssl never unpickles arbitrary objects (nothing in the file was run). Files avssl writes hold "
                f"numbers only: this one was replaced or damaged; remove it, or rerun what made it") from None
        raise CheckpointError(f"{path}: not a readable .npy {what} ({e})") from None
    except (OSError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable .npy {what}: truncated or corrupt ({e})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise CheckpointError(f"{path}: expected a numeric {what}, found dtype {getattr(array, 'dtype', type(array))}")
    return array


def read_jsonl(path) -> list[dict]:
    """The lines of a JSON-lines file (``metrics.jsonl``) that are JSON objects; a line being written
    while it is read (or damaged) is skipped. An absent file has none."""
    import json

    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
