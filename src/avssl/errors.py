"""Every error avssl raises on purpose: each names what went wrong and where, so a user can act on it.

    from avssl.errors import AvsslError, ConfigError, MediaError
"""


class AvsslError(Exception):
    """Base class of every error avssl raises on purpose."""


class MediaError(AvsslError):
    """A media file cannot be used: unreadable, corrupt, truncated, missing a stream, too short."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConfigError(AvsslError):
    """A configuration value, manifest or command-line option is invalid."""


class CheckpointError(AvsslError):
    """A checkpoint or weight file is missing, corrupt, or holds something other than plain data."""


class DiskFullError(AvsslError):
    """A write failed for lack of space (or quota); the file it replaces is intact."""


class TrainingDiverged(AvsslError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class NothingDecoded(RuntimeError):
    """Feature extraction decoded no clip of any video (each failure is in the skip report)."""


class LayoutError(CheckpointError):
    """Weights that do not fit the requested architecture or layout, or cannot be converted to it."""
