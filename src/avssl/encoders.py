"""Trained encoders as evaluation sees them: load a run's ``encoders.pt``, or build random ones.

``encoders.pt`` holds plain data only (see ``avssl.io``): the method name, the resolved
config (to rebuild the architectures), the slot -> modality map and each slot's state dict; for
methods that score audio-video synchrony (AVTS, CrissCross) also ``heads``, the weights beyond the
encoders that the score needs, which ``load_method`` puts back into the rebuilt method.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import PretrainConfig
from .errors import CheckpointError
from .io import load_checkpoint
from .methods.base import build_modality_encoder

ENCODERS_FORMAT = "avssl-encoders/1"


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


PRETRAIN_CHECKPOINT_FORMAT = "avssl-pretrain/1"  # engine.pretrain's checkpoints/last.pt and iter_XX.pt


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
    if isinstance(state, dict) and state.get("format") == PRETRAIN_CHECKPOINT_FORMAT:
        return path, _from_pretrain_checkpoint(path, state)
    if not isinstance(state, dict) or state.get("format") != ENCODERS_FORMAT:
        raise CheckpointError(f"{path}: not an avssl encoders file (expected format {ENCODERS_FORMAT})")
    return path, state


def _from_pretrain_checkpoint(path: Path, state: dict) -> dict:
    from .methods import METHODS

    method = state["config"].get("method")
    if method not in METHODS:
        raise CheckpointError(f"{path}: a checkpoint of unknown method {method!r}")
    weights = state["method"]
    encoders = {}
    for slot in METHODS[method].slots:
        prefix = f"encoders.{slot}."
        encoders[slot] = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    out = {"format": ENCODERS_FORMAT, "method": method, "config": state["config"],
           "slots": dict(METHODS[method].slots), "encoders": encoders,
           "checkpoint": {"iteration": state.get("iteration"), "epoch": state.get("epoch")}}
    if getattr(METHODS[method], "supports_sync", False):  # as PretextMethod.head_states saves them
        out["heads"] = {k: v for k, v in weights.items() if not k.startswith("encoders.")}
    return out


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
