"""The demo world's soundtrack: the class's timbre and rhythm, pitch-shifted, reverberated, over background noise.

Usage: ``samples = render_audio(CLASSES[label], events, nuisances, config, rng)`` (float32, mono)
"""
from __future__ import annotations

import numpy as np

from .spec import BASE_F0, ClassSpec, DemoWorldConfig, since_event

# ---------------------------------------------------------------------------------------------------
# Audio factors.


def _timbre(name: str, t: np.ndarray, since: np.ndarray, f0: float, rng: np.random.Generator, sr: int):
    """The class's sound source (unit-ish amplitude) before its envelope; ``since``: time since the event."""

    def harmonics(weights, decay_per_harmonic=0.0):
        out = np.zeros_like(t)
        for n, w in enumerate(weights, start=1):
            if n * f0 < sr / 2:
                out += w * np.sin(2 * np.pi * n * f0 * t) * np.exp(-since * decay_per_harmonic * n)
        return out

    if name == "pluck":  # sawtooth-like; upper harmonics die first, as on a string
        return harmonics([1 / n for n in range(1, 13)], decay_per_harmonic=6.0)
    if name == "knock":  # a wood block: two inharmonic modes plus a short click
        click = rng.standard_normal(t.shape) * np.exp(-since / 0.004)
        return np.sin(2 * np.pi * f0 * since) + 0.7 * np.sin(2 * np.pi * 2.76 * f0 * since) + 0.6 * click
    if name == "whoosh":
        return _band_noise(rng, len(t), sr, 4 * f0, 2 * f0)
    if name == "beep":  # an octave above f0, with a weak second harmonic
        return harmonics([0.0, 1.0, 0.0, 0.2])
    if name == "bell":  # FM with a decaying modulation index: bright onset, pure tail
        index = 4 * np.exp(-since / 0.1)
        return np.sin(2 * np.pi * 2 * f0 * t + index * np.sin(2 * np.pi * 2.8 * f0 * t))
    if name == "rattle":  # high-band noise chopped into 40 Hz grains
        return _band_noise(rng, len(t), sr, 8 * f0, 4 * f0) * (np.sin(2 * np.pi * 40 * since) > 0)
    if name == "hum":  # odd harmonics, clarinet-like
        return harmonics([1.0, 0, 1 / 3, 0, 1 / 5, 0, 1 / 7])
    if name == "chirp":  # rises two octaves over 120 ms after each event
        return np.sin(2 * np.pi * f0 * (since + 1.5 * since**2 / 0.12))
    raise ValueError(name)


def _band_noise(rng: np.random.Generator, n: int, sr: int, centre: float, width: float) -> np.ndarray:
    """White noise band-passed with a Gaussian frequency response, normalised to unit RMS."""
    freqs = np.fft.rfftfreq(n, 1 / sr)
    spectrum = np.fft.rfft(rng.standard_normal(n)) * np.exp(-0.5 * ((freqs - centre) / width) ** 2)
    out = np.fft.irfft(spectrum, n)
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


def _envelope(spec: ClassSpec, since: np.ndarray) -> np.ndarray:
    """Amplitude after each event: a 3 ms attack and exponential decay on top of the class's sustain level
    (the sustain itself never drops, so sustained sounds swell at events instead of clicking)."""
    attack = 1 - np.exp(-since / 0.003)
    return spec.sustain + (1 - spec.sustain) * attack * np.exp(-since / spec.decay)


def _background_noise(kind: str, rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Unit-RMS background noise of a given colour (spectral slope), or mains hum with harmonics."""
    if kind == "hum":
        t = np.arange(n) / sr
        mains = rng.choice([50.0, 60.0])
        out = sum(np.sin(2 * np.pi * h * mains * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 8))
        out = out + 0.05 * rng.standard_normal(n)
    else:
        slope = {"white": 0.0, "pink": 0.5, "brown": 1.0}[kind]  # amplitude ~ f ** -slope
        freqs = np.fft.rfftfreq(n, 1 / sr)
        gain = np.maximum(freqs, 20.0) ** -slope
        out = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * gain, n)
    return out / np.sqrt(np.mean(out**2))


def _reverb(x: np.ndarray, rng: np.random.Generator, sr: int, rt60: float) -> np.ndarray:
    """A reverberant smear: convolution with exponentially decaying noise (``rt60``: 60 dB decay time)."""
    n_ir = int(rt60 * sr)
    ir = rng.standard_normal(n_ir) * np.exp(-6.9 * np.arange(n_ir) / n_ir)
    ir *= 0.5 / np.sqrt(np.sum(ir**2))
    n = len(x) + n_ir
    wet = np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(ir, n), n)[: len(x)]
    return x + wet


def render_audio(spec: ClassSpec, events: np.ndarray, nuis: dict, config: DemoWorldConfig,
                  rng: np.random.Generator) -> np.ndarray:
    """The clip's mono soundtrack, float32 in [-1, 1]."""
    sr = config.sample_rate
    t = np.arange(int(round(config.duration * sr))) / sr
    since, _, _ = since_event(events, t)
    f0 = BASE_F0 * 2 ** (nuis["pitch_offset"] / 12)
    source = _timbre(spec.sound, t, since, f0, rng, sr) * _envelope(spec, since)
    source = _reverb(source, rng, sr, nuis["reverb_s"])
    source /= np.sqrt(np.mean(source**2)) + 1e-12
    noise = _background_noise(nuis["noise"], rng, len(t), sr) * 10 ** (-nuis["snr_db"] / 20)
    mix = source + noise
    mix *= 10 ** (nuis["loudness_db"] / 20) / np.sqrt(np.mean(mix**2))
    return np.clip(mix, -1, 1).astype(np.float32)
