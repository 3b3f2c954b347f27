"""Pretext methods, by name. Adding one means adding a module here; the engine does not change."""
from ..errors import ConfigError
from .avts import AVTS
from .base import PretextMethod
from .cdc import CDC
from .crisscross import CrissCross
from .longclip import LongClipRetraining
from .mdc import MDC
from .same_modality_xdc import XDCAudioAudio, XDCVideoVideo
from .sdc import SDC
from .supervised import Supervised
from .xdc import XDC

METHODS: dict[str, type[PretextMethod]] = {
    m.name: m for m in (SDC, MDC, CDC, XDC, XDCVideoVideo, XDCAudioAudio, AVTS, CrissCross, LongClipRetraining,
                       Supervised)
}


def build_method(cfg) -> PretextMethod:
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; choose one of {sorted(METHODS)}")
    return METHODS[cfg.method](cfg)
