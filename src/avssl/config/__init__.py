"""Configuration as plain data: the config tree, its checks, config files and the named presets.

    from avssl.config import resolve
    cfg = resolve("cpu-small", "xdc", ["clustering.k=64"], config_file="exp.yaml")

A run's resolved config is written to its run directory as JSON, so every number that shaped a
result can be read back (and a run resumed with exactly the same settings).

- ``tree``: the dataclasses (``PretrainConfig`` and its sections), ``section.key=value`` overrides,
  key suggestions and differences
- ``checks``: ``validate``, every impossible value in one message (the general checks; a method checks
  its own section, ``avssl.methods.validate`` adds them)
- ``files``: YAML/JSON config files in, YAML out
- ``presets``: the named configs and ``resolve``, the one merge every command builds its config with
"""
from .checks import AUDIO_ENCODERS, SEED_LIMIT, VIDEO_ENCODERS, validate
from .files import load_config_file, to_yaml
from .presets import DEFAULT_PRESET, PRESETS, config_layers, file_preset, preset, preset_summary, resolve
from .tree import (
    RESUME_CHANGEABLE, AudioConfig, AVTSConfig, ClusteringConfig, CrissCrossConfig, LoaderConfig,
    LoggingConfig, OptimConfig, PretrainConfig, VideoConfig, apply_overrides, check_resumable, config_differences,
    config_keys, did_you_mean, flatten, tree_overrides,
)

__all__ = [
    "AUDIO_ENCODERS", "AVTSConfig", "AudioConfig", "ClusteringConfig", "CrissCrossConfig",
    "DEFAULT_PRESET", "LoaderConfig", "LoggingConfig", "OptimConfig", "PRESETS", "PretrainConfig", "RESUME_CHANGEABLE",
    "SEED_LIMIT", "VIDEO_ENCODERS", "VideoConfig", "apply_overrides", "check_resumable", "config_differences",
    "config_keys", "config_layers", "did_you_mean", "file_preset", "flatten", "load_config_file", "preset",
    "preset_summary", "resolve", "to_yaml", "tree_overrides", "validate",
]
