"""The pretext methods a user can pretrain with, by name (``avssl pretrain --method``). Adding one means
adding a module here (with the checks of its own config section, ``config_problems``); the engine does
not change.

    from avssl.methods import build_method, validate
    cfg = validate(cfg)   # config.validate's general checks and the method's own, in one ConfigError
    method = build_method(cfg)
"""
from __future__ import annotations

from .. import config
from ..errors import ConfigError
from ..method_names import USER_METHODS
from .avts import AVTS
from .base import PretextMethod
from .cdc import CDC
from .crisscross import CrissCross
from .deep_clustering import recluster_problems
from .mdc import MDC
from .same_modality_xdc import XDCAudioAudio, XDCVideoVideo
from .sdc import SDC
from .supervised import Supervised
from .xdc import XDC

METHODS: dict[str, type[PretextMethod]] = {
    m.name: m for m in (SDC, MDC, CDC, XDC, XDCVideoVideo, XDCAudioAudio, AVTS, CrissCross, Supervised)
}


def build_method(cfg) -> PretextMethod:
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; choose one of {sorted(METHODS)}")
    return METHODS[cfg.method](cfg)


def validate(cfg: config.PretrainConfig, method: type[PretextMethod] | None = None) -> config.PretrainConfig:
    """``config.validate``'s general checks and every method's own (``config_problems``), every problem in
    one ConfigError before any work. ``method``: a workflow's own method class (``cfg.method`` must then
    name it), else the user method ``cfg.method`` names. The other methods' sections are checked too,
    though this run ignores them: a saved config.json holds no impossible value (their defaults are valid)."""
    cls = METHODS.get(cfg.method) if method is None else method
    owners = dict.fromkeys([*([] if cls is None else [cls]), *METHODS.values()])  # the training method first
    more = [problem for owner in owners for problem in owner.config_problems(cfg)]
    if cls is not None:
        more += recluster_problems(cfg, cls, METHODS)
    return config.validate(cfg, USER_METHODS if method is None else (method.name,), more)
