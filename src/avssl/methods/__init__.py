"""The pretext methods a user can pretrain with, by name (``avssl pretrain --method``). Adding one means
adding a module here; the engine does not change.

    from avssl.methods import build_method
"""
from ..errors import ConfigError
from .avts import AVTS
from .base import PretextMethod
from .cdc import CDC
from .crisscross import CrissCross
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
