"""Log-mel spectrograms on plain torch, matching librosa's Slaney mel filterbank.

The audio encoders of XDC and CrissCross take a ``Q x P`` log-mel "image" of a 2 s clip:
40 x 100 in XDC and 80 x 200 in CrissCross. :class:`LogMelSpectrogram` turns a waveform batch into
``(B, 1, Q, P)`` tensors with exactly those shapes.

Frame count: ``torch.stft(center=True)`` yields ``1 + n // hop_length`` frames for ``n`` samples,
i.e. 101 for 2 s at a 20 ms hop. The last of them is centred on the clip's final sample and half
made of reflect padding, so it is dropped: ``num_frames`` may be ``n // hop_length`` (that drop) or
``1 + n // hop_length`` (keep every frame), and the config refuses anything else rather than
silently cutting off audio.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from avssl.errors import ConfigError

__all__ = [
    "CRISSCROSS_LOGMEL",
    "LOG_OFFSET",
    "LogMelConfig",
    "LogMelSpectrogram",
    "XDC_LOGMEL",
    "mel_filterbank",
]

#: Added to the mel power before the log so silence maps to log(1e-6) ~ -13.8 instead of -inf.
LOG_OFFSET = 1e-6

# Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    with np.errstate(divide="ignore"):  # log of 0 Hz is masked out by the np.where
        log_part = _MIN_LOG_MEL + np.log(hz / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, log_part, hz / _F_SP)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - _MIN_LOG_MEL)), _F_SP * mel)


def mel_filterbank(
    n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> Tensor:
    """Triangular mel filters, shape ``(n_mels, n_freqs)``, float32.

    Slaney mel scale with Slaney area normalisation (each filter is scaled by 2 / its bandwidth in
    Hz), equal to ``librosa.filters.mel(sr=sample_rate, n_fft=2 * (n_freqs - 1), n_mels=n_mels,
    fmin=f_min, fmax=f_max)``. ``n_freqs`` is the number of one-sided STFT bins of an even
    ``n_fft``. Raises :class:`ConfigError` if a filter falls between two FFT bins and is empty
    (librosa only warns): such a band would be a constant channel.
    """
    if n_freqs < 2:
        raise ConfigError(f"mel_filterbank: n_freqs must be >= 2, got {n_freqs}")
    if n_mels < 1:
        raise ConfigError(f"mel_filterbank: n_mels must be >= 1, got {n_mels}")
    if sample_rate <= 0:
        raise ConfigError(f"mel_filterbank: sample_rate must be positive, got {sample_rate}")
    nyquist = sample_rate / 2.0
    f_max = nyquist if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max <= nyquist:
        raise ConfigError(
            f"mel_filterbank: need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, "
            f"f_max={f_max}, sample_rate / 2={nyquist}"
        )

    fft_freqs = np.linspace(0.0, nyquist, n_freqs)
    # n_mels + 2 band edges equally spaced in mel; filter i rises on [i, i+1] and falls on [i+1, i+2].
    edges = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(edges)
    offsets = edges[:, None] - fft_freqs[None, :]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]

    empty = np.flatnonzero(weights.max(axis=1) == 0.0)
    if empty.size:
        raise ConfigError(
            f"mel_filterbank: {empty.size} of n_mels={n_mels} filters cover no FFT bin "
            f"(first: {int(empty[0])}); use fewer mels or a larger n_fft (n_freqs={n_freqs})"
        )
    return torch.from_numpy(weights.astype(np.float32))


@dataclass(frozen=True)
class LogMelConfig:
    """Parameters of :class:`LogMelSpectrogram`; validated on construction.

    The defaults are XDC's 40 x 100 setting. ``duration * sample_rate`` is the number of samples
    the module expects per waveform (:attr:`num_samples`).
    """

    sample_rate: int = 16000
    duration: float = 2.0
    n_mels: int = 40
    n_fft: int = 1024
    win_length: int = 640
    hop_length: int = 320
    num_frames: int = 100
    f_min: float = 0.0
    f_max: float | None = None

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_mels", "n_fft", "win_length", "hop_length", "num_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"LogMelConfig.{name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.duration) and self.duration > 0):
            raise ConfigError(f"LogMelConfig.duration must be a positive number of seconds, got {self.duration!r}")
        if self.n_fft % 2:
            # The filterbank derives bin frequencies from n_fft // 2 + 1 bins, which is exact only for even n_fft.
            raise ConfigError(f"LogMelConfig.n_fft must be even, got {self.n_fft}")
        if self.win_length > self.n_fft:
            raise ConfigError(f"LogMelConfig.win_length={self.win_length} must be <= n_fft={self.n_fft}")
        nyquist = self.sample_rate / 2
        if self.f_max is not None and not 0 < self.f_max <= nyquist:
            raise ConfigError(f"LogMelConfig.f_max={self.f_max} must be in (0, sample_rate / 2 = {nyquist}]")
        if not 0 <= self.f_min < (nyquist if self.f_max is None else self.f_max):
            raise ConfigError(f"LogMelConfig.f_min={self.f_min} must be >= 0 and below f_max")
        samples = self.duration * self.sample_rate
        if abs(samples - round(samples)) > 1e-6:
            raise ConfigError(
                f"LogMelConfig.duration={self.duration} s is not a whole number of samples at {self.sample_rate} Hz"
            )
        if self.num_samples <= self.n_fft // 2:
            # torch.stft's reflect padding needs more samples than the half window it pads.
            raise ConfigError(
                f"LogMelConfig.duration={self.duration} s gives {self.num_samples} samples, "
                f"too few for n_fft={self.n_fft}"
            )
        hops = self.num_samples // self.hop_length
        if self.num_frames not in (hops, hops + 1):
            raise ConfigError(
                f"LogMelConfig.num_frames={self.num_frames} does not match {self.num_samples} samples at "
                f"hop_length={self.hop_length}: use {hops} (drop the padded last frame) or {hops + 1}"
            )

    @property
    def num_samples(self) -> int:
        """Waveform length the module expects: ``duration * sample_rate``."""
        return round(self.duration * self.sample_rate)


#: XDC (Sec. 4.1): 2 s at 16 kHz, Q=40 mels, P=100 frames. A 20 ms hop (320) makes 2 s exactly
#: 100 hops; a 40 ms window (640, 50% overlap) is the usual speech/audio-event analysis length;
#: n_fft=1024 zero-pads that window to a power of two, giving 15.6 Hz bins so the narrow low
#: mel bands still each cover several bins.
XDC_LOGMEL = LogMelConfig(
    sample_rate=16000, duration=2.0, n_mels=40, n_fft=1024, win_length=640, hop_length=320, num_frames=100
)

#: CrissCross (Sec. 4.1): 2 s at 16 kHz, 80 mels, 10 ms hop, FFT window 1024 -> 80 x 200, the
#: shape of its audio encoder's input table (Table S8), hence the dropped 201st frame.
CRISSCROSS_LOGMEL = LogMelConfig(
    sample_rate=16000, duration=2.0, n_mels=80, n_fft=1024, win_length=1024, hop_length=160, num_frames=200
)


class LogMelSpectrogram(nn.Module):
    """Waveform ``(n,)`` or ``(B, n)`` -> log-mel ``(B, 1, n_mels, num_frames)``.

    STFT with a periodic Hann window (centred frames, reflect padding), power spectrum, Slaney mel
    filterbank, then ``log(mel + 1e-6)``. ``n`` must equal ``config.num_samples``; extra frames from
    the centre padding are dropped from the end (see the module docstring). Works in the input's
    floating dtype.
    """

    def __init__(self, config: LogMelConfig):
        super().__init__()
        self.config = config
        # Derived from the config, so kept out of state_dict: checkpoints stay valid if the code changes.
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=False)
        self.register_buffer(
            "mel_fb",
            mel_filterbank(config.n_fft // 2 + 1, config.n_mels, config.sample_rate, config.f_min, config.f_max),
            persistent=False,
        )

    def forward(self, wave: Tensor) -> Tensor:
        cfg = self.config
        if not torch.is_floating_point(wave):
            raise TypeError(f"LogMelSpectrogram expects a floating-point waveform, got {wave.dtype}")
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        if wave.dim() != 2 or wave.shape[-1] != cfg.num_samples:
            raise ValueError(
                f"LogMelSpectrogram expects a waveform of shape (n,) or (B, n) with n={cfg.num_samples} "
                f"({cfg.duration} s at {cfg.sample_rate} Hz), got {tuple(wave.shape)}"
            )
        spec = torch.stft(
            wave,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window.to(wave.dtype),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return self._log_mel(spec).unsqueeze(1)

    def _log_mel(self, spec: Tensor) -> Tensor:
        """STFT ``(B, n_fft // 2 + 1, frames)`` -> ``log(mel power + 1e-6)`` ``(B, n_mels, num_frames)``:
        the kept frames only, the power in two passes (re^2, then += im^2), the offset and log in place."""
        parts = torch.view_as_real(spec[..., : self.config.num_frames])
        power = parts[..., 0].square()
        power += parts[..., 1].square()
        mel = torch.matmul(self.mel_fb.to(power.dtype), power)
        return mel.add_(LOG_OFFSET).log_()

    def of_clip(self, wave: np.ndarray, gain: float | None = None) -> Tensor:
        """``self(torch.from_numpy(wave) * gain)[0]`` (``(1, n_mels, num_frames)``) for one float32
        numpy waveform of ``config.num_samples``, the same values bit for bit, cheaper: the gain (a
        volume jitter) and the STFT's reflect padding are done in one pass into the padded buffer,
        instead of a scaled copy and then a padded copy of it."""
        cfg = self.config
        if not (isinstance(wave, np.ndarray) and wave.dtype == np.float32 and wave.shape == (cfg.num_samples,)):
            raise ValueError(f"of_clip expects a float32 numpy waveform of {cfg.num_samples} samples, got "
                             f"{getattr(wave, 'dtype', type(wave).__name__)} of shape {getattr(wave, 'shape', None)}")
        n, p = wave.shape[0], cfg.n_fft // 2  # the config keeps n > p, as reflect padding needs
        padded = np.empty(n + 2 * p, np.float32)
        body = padded[p : p + n]
        if gain is None:
            body[...] = wave
        else:
            np.multiply(wave, np.float32(gain), out=body)  # as torch's float32 tensor * Python float
        padded[:p] = padded[2 * p : p : -1]  # reflect: x[p], ..., x[1]
        padded[p + n :] = padded[p + n - 2 : n - 2 : -1]  # x[n - 2], ..., x[n - 1 - p]
        spec = torch.stft(
            torch.from_numpy(padded)[None],
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window.to(torch.float32),
            center=False,
            return_complex=True,
        )
        return self._log_mel(spec)

    def extra_repr(self) -> str:
        return repr(self.config)
