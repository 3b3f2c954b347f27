"""The run directory: the one writer and reader of what a pretraining run leaves behind.

    enc = load_encoders("runs/xdc")            # or an encoders.pt, or checkpoints/last.pt
    paths, labels = read_run_videos("runs/xdc")

A run directory holds ``config.json`` (the resolved config, ``PretrainConfig.save``), ``videos.csv``
(the usable videos in the order of every per-video table, ``engine.datarecord``), ``checkpoints/``
(``last.pt`` after every epoch, ``iter_XX.pt`` after every iteration, format ``CHECKPOINT_FORMAT``),
``metrics.jsonl``, ``skipped.json``, ``clusters/`` (the last iteration's assignments, distances and
centroids per clustering) and, when the run finished, ``encoders.pt``.

``encoders.pt`` holds plain data only (see ``avssl.io``): the method name, the resolved config (to
rebuild the architectures), the slot -> modality map and each slot's state dict; for methods that
score audio-video synchrony (AVTS, CrissCross) also ``heads``, the weights beyond the encoders that
the score needs, which ``load_method`` puts back into the rebuilt method. ``encoders_payload``
builds it, for a finished run, an unfinished run's checkpoint and imported weights alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import PretrainConfig
from .errors import CheckpointError, ConfigError
from .io import atomic_save_array, load_checkpoint
from .models import build_modality_encoder

ENCODERS_FORMAT = "avssl-encoders/1"
CHECKPOINT_FORMAT = "avssl-pretrain/1"  # the engine's checkpoints/last.pt and iter_XX.pt


@dataclass
class LoadedEncoders:
    cfg: PretrainConfig  # architecture and clip settings the encoders were trained with
    method: str  # "scratch" for random encoders
    slots: dict[str, str]  # slot -> modality
    modules: dict[str, nn.Module]

    def for_modality(self, modality: str) -> tuple[str, nn.Module]:
        """The (first) encoder that reads ``modality``."""
        for slot, m in self.slots.items():
            if m == modality:
                return slot, self.modules[slot]
        raise CheckpointError(f"the {self.method} encoders have no {modality} encoder (slots: {self.slots})")

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in ("video", "audio") if m in self.slots.values())


def encoders_payload(method: str, config: dict, slots: dict, encoders: dict, heads: dict | None = None,
                     **extra) -> dict:
    """The contents of an ``encoders.pt``: ``encoders`` {slot: state dict} (and ``heads``, when any) as
    CPU tensors, with what rebuilds them; ``extra`` keys (``source``, ``checkpoint``) are kept as given."""
    def cpu(sd):
        return {k: v.detach().cpu() for k, v in sd.items()}

    payload = {"format": ENCODERS_FORMAT, "method": method, "config": config, "slots": dict(slots),
               "encoders": {s: cpu(sd) for s, sd in encoders.items()}, **extra}
    if heads:  # what ``avssl eval sync`` needs beyond the encoders (AVTS embeddings, CrissCross heads)
        payload["heads"] = cpu(heads)
    return payload


def _read(path) -> tuple[Path, dict]:
    """``encoders.pt`` (or the one in a run directory), or a pretraining checkpoint (``last.pt``,
    ``iter_XX.pt``: the encoders of a run that has not finished), as the contents of an encoders file."""
    path = Path(path)
    if path.is_dir():
        if not (path / "encoders.pt").exists() and (path / "checkpoints" / "last.pt").exists():
            raise CheckpointError(f"{path} has no encoders.pt (the run has not finished); pass "
                                  f"{path / 'checkpoints' / 'last.pt'} (or an iter_XX.pt) to use its latest weights")
        path = path / "encoders.pt"
    state = load_checkpoint(path)
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        return path, _from_pretrain_checkpoint(path, state)
    if not isinstance(state, dict) or state.get("format") != ENCODERS_FORMAT:
        raise CheckpointError(f"{path}: not an avssl encoders file (expected format {ENCODERS_FORMAT})")
    return path, state


def _from_pretrain_checkpoint(path: Path, state: dict) -> dict:
    from .methods import METHODS

    method = state["config"].get("method")
    slots = state.get("slots")  # recorded by the engine; older checkpoints: the method's own
    if slots is None:
        if method not in METHODS:
            raise CheckpointError(f"{path}: a checkpoint of unknown method {method!r}")
        slots = METHODS[method].slots
    weights = state["method"]
    encoders = {}
    for slot in slots:
        prefix = f"encoders.{slot}."
        encoders[slot] = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    heads = None
    if state.get("supports_sync", getattr(METHODS.get(method), "supports_sync", False)):  # as head_states saves them
        heads = {k: v for k, v in weights.items() if not k.startswith("encoders.")}
    return encoders_payload(method, state["config"], slots, encoders, heads,
                            checkpoint={"iteration": state.get("iteration"), "epoch": state.get("epoch")})


def load_encoders(path) -> LoadedEncoders:
    """Load ``encoders.pt`` (or a run directory holding one), or the encoders in a pretraining
    checkpoint (``checkpoints/last.pt`` of an unfinished run)."""
    path, state = _read(path)
    cfg = PretrainConfig.from_dict(state["config"])
    modules = {}
    for slot, modality in state["slots"].items():
        enc = build_modality_encoder(cfg, modality)
        try:
            enc.load_state_dict(state["encoders"][slot], strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: weights of slot {slot!r} do not fit its architecture: {e}") from None
        modules[slot] = enc.eval()
    return LoadedEncoders(cfg, state["method"], dict(state["slots"]), modules)


def load_method(path):
    """The pretext method of a run, rebuilt from ``encoders.pt`` with its encoders and heads, in eval
    mode: for evaluations that need more than the encoders (``avssl eval sync``)."""
    from .methods import build_method

    path, state = _read(path)
    method = build_method(PretrainConfig.from_dict(state["config"]))
    if not method.supports_sync:
        raise CheckpointError(f"{path}: {state['method']} does not score audio-video synchrony "
                              f"(methods that do: AVTS, CrissCross)")
    if "heads" not in state:
        raise CheckpointError(f"{path}: no heads were saved with these encoders; rerun the pretraining")
    weights = {f"encoders.{slot}.{k}": v for slot, sd in state["encoders"].items() for k, v in sd.items()}
    try:
        method.load_state_dict({**weights, **state["heads"]})
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the {state['method']} architecture: {e}") from None
    return method.eval()


def scratch_encoders(cfg: PretrainConfig, seed: int | None = None) -> LoadedEncoders:
    """Randomly initialised video and audio encoders: the paper's lower bound ("Scratch")."""
    torch.manual_seed(cfg.seed if seed is None else seed)
    slots = {"video": "video", "audio": "audio"}
    return LoadedEncoders(cfg, "scratch", slots, {s: build_modality_encoder(cfg, m).eval() for s, m in slots.items()})


# --- the run's other files -----------------------------------------------------------------------

@dataclass(frozen=True)
class VideoRow:
    """One row of ``videos.csv``; ``size`` and ``mtime_ns`` are None in runs recorded without them."""

    path: str
    label: str | None
    size: int | None
    mtime_ns: int | None


def read_videos_csv(path) -> list[VideoRow] | None:
    """The rows of a ``videos.csv`` in order (``index,path,label,size,mtime_ns``; path and label are JSON
    strings, so any character survives; older runs have only the first three columns); None when the
    file does not exist. The one reader of the format (``engine.datarecord`` writes it)."""
    import json

    path = Path(path)
    if not path.exists():
        return None
    decoder = json.JSONDecoder()
    out = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            rest = line.split(",", 1)[1]
            video, end = decoder.raw_decode(rest)
            rest = rest[end + 1:]
            label, end = decoder.raw_decode(rest) if rest.strip() else ("", 0)
            extra = rest[end:].lstrip(",").split(",") if rest[end:].strip() else []
            size = int(extra[0]) if len(extra) > 0 and extra[0] else None
            mtime = int(extra[1]) if len(extra) > 1 and extra[1] else None
        except (IndexError, ValueError) as e:
            raise ConfigError(f"{path} line {number} is not a videos.csv row ({e}); the run's record is damaged") from None
        out.append(VideoRow(video, label or None, size, mtime))
    return out


def read_run_videos(run_dir) -> tuple[list[str], list[str | None]]:
    """Paths and labels of a run's ``videos.csv`` (see :func:`read_videos_csv`)."""
    rows = read_videos_csv(Path(run_dir) / "videos.csv")
    if rows is None:
        raise ConfigError(f"{run_dir} has no videos.csv; is it a pretraining run directory?")
    return [r.path for r in rows], [r.label for r in rows]


def save_clustering(run_dir, name: str, labels, distances, centroids) -> None:
    """``clusters/<name>_{assignments,distances,centroids}.npy`` of the run's latest clustering."""
    d = Path(run_dir) / "clusters"
    atomic_save_array(d / f"{name}_assignments.npy", labels)
    atomic_save_array(d / f"{name}_distances.npy", distances)
    atomic_save_array(d / f"{name}_centroids.npy", centroids)


def clustering_names(run_dir) -> list[str]:
    """The clusterings a run saved (``clusters/*_assignments.npy``), sorted."""
    found = sorted(p.name[: -len("_assignments.npy")] for p in (Path(run_dir) / "clusters").glob("*_assignments.npy"))
    if not found:
        raise ConfigError(f"{run_dir} has no clusters/*_assignments.npy; it holds no clustering")
    return found
