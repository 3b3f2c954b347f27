"""The embedded demo dataset: a small synthetic audio-visual world written as real mp4 files.

Each clip shows one object and plays its sound. The latent class decides things that show in BOTH
modalities: the object's shape, surface texture and motion, and the sound's timbre and rhythm. The
motion events (a bounce landing, a flash, a pulse...) happen at the same instants as the sound events,
so audio-visual synchrony is real.

Everything else is a per-clip nuisance drawn independently of the class, and deliberately strong: the
background colour and texture (most of the pixels), the object's colour, size and position, a camera
pan; the loudness, a background noise of some type and level, a pitch offset of several semitones and a
reverberant smear. This mirrors the argument of XDC (Alwassel et al., 2020): clustering one modality's
low-level features groups clips by that modality's nuisances, while the class is the only factor the two
modalities share, which a cross-modal method can latch on to.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avssl.data.writer import write_av
from avssl.errors import ConfigError
from avssl.io import atomic_write_text
from avssl.progress import progress as progress_bar

# Bump when the generator's output changes, so cached copies made by an older version are not reused.
GENERATOR_VERSION = 4
COMPLETE_MARKER = ".complete"


@dataclass(frozen=True)
class DemoWorldConfig:
    """Size and seed of a demo world: the first ``num_classes`` of :data:`CLASS_NAMES`, each with
    ``clips_per_class`` clips. ``duration`` should hold a 2 s audio window plus some jitter.

    Half the clips are held out: with 80 held-out videos (the old 40 per class, a quarter held out) a
    linear probe's accuracy had a binomial standard error of about 5 points, the size of the effects the
    demo measures; 240 held-out videos bring it to about 3. The 240 training videos are unchanged."""

    num_classes: int = 8
    clips_per_class: int = 60
    duration: float = 3.0
    fps: int = 30
    width: int = 64
    height: int = 64
    sample_rate: int = 16000
    test_fraction: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class _ClassSpec:
    shape: str
    texture: str
    motion: str
    sound: str
    rhythm: str
    decay: float  # seconds for a sound event to fade
    sustain: float  # level the sound keeps between events (0: purely percussive)

    @property
    def name(self) -> str:
        return f"{self.shape}-{self.motion}-{self.sound}"


_CLASSES = [
    _ClassSpec("disk", "solid", "bounce", "pluck", "2.5Hz", decay=0.12, sustain=0.0),
    _ClassSpec("square", "checker", "slide", "knock", "1.6Hz", decay=0.06, sustain=0.0),
    _ClassSpec("triangle", "stripes", "spin", "whoosh", "2Hz", decay=0.25, sustain=0.35),
    _ClassSpec("cross", "solid", "pulse", "beep", "4Hz", decay=0.08, sustain=0.0),
    _ClassSpec("ring", "solid", "flash", "bell", "double-tap", decay=0.2, sustain=0.0),
    _ClassSpec("star", "stripes", "shake", "rattle", "irregular", decay=0.1, sustain=0.0),
    _ClassSpec("crescent", "checker", "orbit", "hum", "1.6Hz", decay=0.3, sustain=0.4),
    _ClassSpec("bar", "stripes", "squash", "chirp", "gallop", decay=0.1, sustain=0.0),
]
CLASS_NAMES: list[str] = [spec.name for spec in _CLASSES]

# Saturated, well separated colours: the background's colour is the dominant low-level factor of a frame.
_PALETTE = {
    "red": (200, 40, 40),
    "orange": (235, 140, 30),
    "yellow": (230, 215, 50),
    "green": (50, 170, 60),
    "teal": (30, 160, 170),
    "blue": (40, 70, 200),
    "purple": (130, 50, 180),
    "pink": (235, 120, 190),
}
_BACKGROUND_TEXTURES = ("gradient", "stripes", "checker", "blotches")
_NOISES = ("white", "pink", "brown", "hum")
_BASE_F0 = 300.0  # Hz; the same for every class, so pitch is purely a nuisance


# ---------------------------------------------------------------------------------------------------
# Rhythm: when the events happen. Times are in seconds before the per-clip tempo and phase nuisances.


_RHYTHMS = {  # name: (period, event offsets within a period), in seconds
    "1.6Hz": (0.625, (0.0,)),
    "2Hz": (0.5, (0.0,)),
    "2.5Hz": (0.4, (0.0,)),
    "4Hz": (0.25, (0.0,)),
    "double-tap": (0.8, (0.0, 0.15)),
    "gallop": (0.75, (0.0, 0.12, 0.24)),
}


def _rhythm_pattern(name: str, rng: np.random.Generator, span: float) -> np.ndarray:
    """Event times covering [0, span) for one class rhythm."""
    if name == "irregular":
        # Gaps are bounded above so every 2 s audio window holds several events.
        return np.cumsum(rng.uniform(0.12, 0.55, size=int(span / 0.12) + 1))
    period, offsets = _RHYTHMS[name]
    starts = np.arange(0.0, span, period)
    return (starts[:, None] + np.asarray(offsets)[None]).ravel()


def _event_times(spec: _ClassSpec, tempo: float, phase: float, duration: float, rng) -> np.ndarray:
    """Event times (s) spanning the clip with a margin, so every instant has a previous and next event."""
    margin = 2.0
    span = (duration + 2 * margin) / tempo
    return _rhythm_pattern(spec.rhythm, rng, span) * tempo - margin + phase


def _since_event(events: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each time: seconds since the last event, progress (0..1) towards the next one, event index."""
    k = np.searchsorted(events, t, side="right") - 1
    since = t - events[k]
    progress = since / (events[k + 1] - events[k])
    return since, progress, k


# ---------------------------------------------------------------------------------------------------
# Video factors. Lengths are in pixels of the frame; the object's nominal radius is 20% of the short side.


def _shape_sdf(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (in object radii; negative inside) of object-local points to the shape's outline."""

    def box(hu, hv):
        qu, qv = np.abs(u) - hu, np.abs(v) - hv
        return np.hypot(np.maximum(qu, 0), np.maximum(qv, 0)) + np.minimum(np.maximum(qu, qv), 0)

    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    if name == "disk":
        return r - 1.0
    if name == "square":
        return box(0.85, 0.85)
    if name == "triangle":  # regular polygon in polar form, one vertex pointing up
        sector = np.mod(theta + np.pi / 2, 2 * np.pi / 3) - np.pi / 3
        return r * np.cos(sector) - 0.6
    if name == "cross":
        return np.minimum(box(1.0, 0.33), box(0.33, 1.0))
    if name == "ring":
        return np.abs(r - 0.72) - 0.28
    if name == "star":  # five spikes: radius linear in angle between tip (1.15) and notch (0.55)
        tooth = np.abs(np.mod(theta * 5 / (2 * np.pi), 1.0) * 2 - 1)
        return (r - (0.55 + 0.6 * (1 - tooth))) * 0.6
    if name == "crescent":
        return np.maximum(r - 1.0, 0.8 - np.hypot(u - 0.5, v + 0.3))
    if name == "bar":
        return box(1.15, 0.45)
    raise ValueError(name)


def _object_texture(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Surface pattern in [0, 1], in object-local coordinates so it turns and scales with the object."""
    if name == "solid":
        return np.ones_like(u)
    if name == "stripes":
        return (np.sin(u * 2.5 * np.pi) > 0).astype(np.float32)
    if name == "checker":
        return ((np.sin(u * 2 * np.pi) * np.sin(v * 2 * np.pi)) > 0).astype(np.float32)
    raise ValueError(name)


@dataclass
class _Pose:
    """Per-frame object pose relative to its rest position: offsets (px), scales, angle (rad), flash 0..1."""

    dx: np.ndarray
    dy: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    angle: np.ndarray
    flash: np.ndarray


def _motion(name: str, t: np.ndarray, events: np.ndarray, size: float) -> _Pose:
    """The class's motion signature; its salient instants (landing, wall hit, peak...) are the events."""
    since, progress, k = _since_event(events, t)
    zeros, ones = np.zeros_like(t), np.ones_like(t)
    hit = np.exp(-since / 0.08)  # a quick decay after each event
    pose = _Pose(zeros, zeros, ones, ones, zeros, zeros)
    if name == "bounce":  # parabolic hops landing on each event
        pose.dy = size * (0.4 - 3.2 * progress * (1 - progress))
    elif name == "slide":  # travels between two walls, hitting one at each event
        pose.dx = size * 0.6 * (1 - 2 * progress) * np.where(k % 2 == 0, 1, -1)
    elif name == "spin":  # a third of a turn per event: the triangle points up at each event
        pose.angle = (k + progress) * 2 * np.pi / 3
    elif name == "pulse":
        pose.sx = pose.sy = 0.85 + 0.4 * hit
    elif name == "flash":
        pose.flash = hit
    elif name == "shake":
        pose.dx = size * 0.3 * np.exp(-since / 0.15) * np.sin(2 * np.pi * 12 * since)
    elif name == "orbit":  # one circle per event interval, at the top at each event
        pose.dx = size * 0.45 * np.sin(2 * np.pi * progress)
        pose.dy = -size * 0.45 * np.cos(2 * np.pi * progress)
    elif name == "squash":
        pose.sx, pose.sy = 1 + 0.25 * hit, 1 - 0.45 * hit
    else:
        raise ValueError(name)
    return pose


def _background(nuis: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Background RGB (float, 0..255) at world coordinates ``x, y``: a colour modulated by a texture."""
    angle, period = nuis["background_angle"], nuis["background_period"]
    along = x * np.cos(angle) + y * np.sin(angle)
    across = -x * np.sin(angle) + y * np.cos(angle)
    kind = nuis["background_texture"]
    if kind == "gradient":
        pattern = np.tanh(along / (2 * period))
    elif kind == "stripes":
        pattern = np.sin(2 * np.pi * along / period)
    elif kind == "checker":
        pattern = np.sign(np.sin(2 * np.pi * along / period) * np.sin(2 * np.pi * across / period))
    elif kind == "blotches":
        pattern = np.sin(2 * np.pi * along / (2 * period)) * np.cos(2 * np.pi * across / (1.5 * period))
    else:
        raise ValueError(kind)
    shade = 1 + nuis["background_contrast"] * pattern
    return shade[..., None] * np.asarray(_PALETTE[nuis["background"]], dtype=np.float32)


def _render_video(spec: _ClassSpec, events: np.ndarray, nuis: dict, config: DemoWorldConfig) -> np.ndarray:
    """All frames of one clip, uint8 (T, H, W, 3)."""
    n_frames = int(round(config.duration * config.fps))
    t = (np.arange(n_frames) / config.fps).astype(np.float32)
    size = 0.2 * min(config.width, config.height) * nuis["object_scale"]
    pose = _motion(spec.motion, t, events, size)

    # The camera pans across the background while loosely following the object, so the object drifts in
    # the frame only a quarter as fast as the background scrolls (and stays in view).
    cam_x, cam_y = nuis["camera_vx"] * t, nuis["camera_vy"] * t
    ys, xs = np.mgrid[0 : config.height, 0 : config.width].astype(np.float32)
    xs, ys = xs[None], ys[None]
    frames = _background(nuis, xs + cam_x[:, None, None], ys + cam_y[:, None, None])

    def per_frame(a):
        return a[:, None, None]

    cx = config.width / 2 + nuis["object_x"] - 0.25 * cam_x + pose.dx
    cy = config.height / 2 + nuis["object_y"] - 0.25 * cam_y + pose.dy
    rel_x, rel_y = xs - per_frame(cx), ys - per_frame(cy)
    cos, sin = per_frame(np.cos(pose.angle)), per_frame(np.sin(pose.angle))
    u = (cos * rel_x + sin * rel_y) / (size * per_frame(pose.sx))
    v = (-sin * rel_x + cos * rel_y) / (size * per_frame(pose.sy))

    # Antialiased coverage from the distance in pixels; a dark outline keeps the shape readable whatever
    # the object and background colours.
    dist = _shape_sdf(spec.shape, u, v) * size * per_frame(np.minimum(pose.sx, pose.sy))
    cover = np.clip(0.5 - dist, 0, 1)[..., None]
    body = np.clip(-1.5 - dist, 0, 1)[..., None]
    colour = np.asarray(_PALETTE[nuis["object_colour"]], dtype=np.float32)
    shade = 0.6 + 0.4 * _object_texture(spec.texture, u, v)[..., None]
    flash = per_frame(pose.flash)[..., None]
    surface = (shade * colour) * (1 - flash) + 255 * flash
    obj = body * surface + (1 - body) * 20.0  # outline colour: near black
    frames = frames * (1 - cover) + obj * cover
    return np.clip(frames, 0, 255).round().astype(np.uint8)


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


def _envelope(spec: _ClassSpec, since: np.ndarray) -> np.ndarray:
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


def _render_audio(spec: _ClassSpec, events: np.ndarray, nuis: dict, config: DemoWorldConfig,
                  rng: np.random.Generator) -> np.ndarray:
    """The clip's mono soundtrack, float32 in [-1, 1]."""
    sr = config.sample_rate
    t = np.arange(int(round(config.duration * sr))) / sr
    since, _, _ = _since_event(events, t)
    f0 = _BASE_F0 * 2 ** (nuis["pitch_offset"] / 12)
    source = _timbre(spec.sound, t, since, f0, rng, sr) * _envelope(spec, since)
    source = _reverb(source, rng, sr, nuis["reverb_s"])
    source /= np.sqrt(np.mean(source**2)) + 1e-12
    noise = _background_noise(nuis["noise"], rng, len(t), sr) * 10 ** (-nuis["snr_db"] / 20)
    mix = source + noise
    mix *= 10 ** (nuis["loudness_db"] / 20) / np.sqrt(np.mean(mix**2))
    return np.clip(mix, -1, 1).astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# Per-clip nuisances, all drawn independently of the class.


def _sample_nuisances(rng: np.random.Generator, config: DemoWorldConfig) -> dict:
    """Every class-independent factor of one clip; all of them go into the manifest."""
    short = min(config.width, config.height)
    colours = list(_PALETTE)
    background = str(rng.choice(colours))
    return {
        "background": background,
        "background_texture": str(rng.choice(_BACKGROUND_TEXTURES)),
        "background_angle": float(rng.uniform(0, np.pi)),
        "background_period": float(rng.uniform(0.12, 0.3) * short),
        "background_contrast": float(rng.uniform(0.1, 0.3)),
        # Any colour but the background's, so the object never vanishes into it.
        "object_colour": str(rng.choice([c for c in colours if c != background])),
        "object_scale": float(rng.uniform(0.85, 1.15)),
        "object_x": float(rng.uniform(-0.1, 0.1) * short),
        "object_y": float(rng.uniform(-0.1, 0.1) * short),
        "camera_vx": float(rng.uniform(-0.25, 0.25) * short),  # px/s
        "camera_vy": float(rng.uniform(-0.25, 0.25) * short),
        # Timing is shared by the two modalities (that is the synchrony) but not tied to the class.
        "tempo": float(rng.uniform(0.9, 1.1)),
        "event_phase": float(rng.uniform(0, 1)),
        # Audio nuisances are milder than the video's (version 4): the soundtrack carries the class, so
        # clustering audio finds it while clustering video finds the background, the situation of XDC.
        "pitch_offset": float(rng.uniform(-2, 2)),  # semitones
        "loudness_db": float(rng.uniform(-30, -12)),  # RMS, dBFS
        "noise": str(rng.choice(_NOISES)),
        "snr_db": float(rng.uniform(10, 25)),
        "reverb_s": float(rng.uniform(0.05, 0.3)),
    }


def _make_clip(task: tuple) -> dict:
    """Render and write one clip; returns its manifest row. Seeded by (seed, class, index) alone, so the
    result does not depend on which worker runs it or in what order."""
    config, label, index, split, path = task
    rng = np.random.default_rng([config.seed, 0, label, index])
    spec = _CLASSES[label]
    nuis = _sample_nuisances(rng, config)
    events = _event_times(spec, nuis["tempo"], nuis["event_phase"], config.duration, rng)
    video = _render_video(spec, events, nuis, config)
    audio = _render_audio(spec, events, nuis, config, rng)
    write_av(path, video, config.fps, audio, config.sample_rate)
    row = {"path": f"clips/{path.name}", "label": spec.name, "split": split, "class_index": label}
    row.update({key: round(value, 4) if isinstance(value, float) else value for key, value in nuis.items()})
    return row


# ---------------------------------------------------------------------------------------------------
# Public API.


def _validate(config: DemoWorldConfig) -> None:
    if not 1 <= config.num_classes <= len(_CLASSES):
        raise ConfigError(f"num_classes must be in 1..{len(_CLASSES)}, got {config.num_classes}")
    if config.clips_per_class < 1:
        raise ConfigError(f"clips_per_class must be >= 1, got {config.clips_per_class}")
    if not 0 <= config.test_fraction < 1:
        raise ConfigError(f"test_fraction must be in [0, 1), got {config.test_fraction}")
    if config.width % 2 or config.height % 2 or min(config.width, config.height) < 16:
        raise ConfigError(f"frame size must be even and at least 16 px, got {config.width}x{config.height}")
    if config.duration <= 0 or config.fps <= 0 or config.sample_rate < 8000:
        raise ConfigError("duration and fps must be positive and sample_rate at least 8000")


def _pool_context():
    """fork on Linux: unlike spawn it does not re-run the caller's main script, which breaks scripts that
    lack an ``if __name__ == "__main__"`` guard; the workers only use numpy and PyAV, which are fork-safe.
    Elsewhere (macOS, Windows) fork is unsafe or missing, so spawn."""
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _test_indices(config: DemoWorldConfig, label: int) -> set[int]:
    """Which clips of a class are held out: a seeded, per-class (hence stratified) random subset."""
    n_test = int(round(config.clips_per_class * config.test_fraction))
    order = np.random.default_rng([config.seed, 1, label]).permutation(config.clips_per_class)
    return set(order[:n_test].tolist())


def generate_demo_world(out_dir, config: DemoWorldConfig = DemoWorldConfig(), workers: int | None = None,
                        progress: bool = True) -> Path:
    """Write ``out_dir/clips/<class>_<i>.mp4`` and ``out_dir/manifest.csv``; returns the manifest path.

    The manifest has ``path`` (relative to it), ``label`` (the class name), ``split`` and ``class_index``, then one column per
    nuisance value. Output is a function of ``config`` alone. Clips are rendered by ``workers`` processes
    (default 2; 0 or 1 renders in this process). The ``.complete`` marker is written last; whatever an
    earlier, interrupted run left in ``out_dir`` is removed first.
    """
    _validate(config)
    out_dir = Path(out_dir)
    clips_dir = out_dir / "clips"
    manifest = out_dir / "manifest.csv"
    (out_dir / COMPLETE_MARKER).unlink(missing_ok=True)
    shutil.rmtree(clips_dir, ignore_errors=True)
    clips_dir.mkdir(parents=True)

    tasks = []
    for label in range(config.num_classes):
        held_out = _test_indices(config, label)
        for index in range(config.clips_per_class):
            split = "test" if index in held_out else "train"
            tasks.append((config, label, index, split, clips_dir / f"{CLASS_NAMES[label]}_{index:03d}.mp4"))

    workers = 2 if workers is None else workers
    rows = []
    if workers <= 1:
        with progress_bar(total=len(tasks), desc="demo world", unit="clip", enabled=progress) as bar:
            for task in tasks:
                rows.append(_make_clip(task))
                bar.update()
    else:
        # The pool starts before the bar's monitor thread: the forked workers copy a single-threaded process.
        with _pool_context().Pool(workers) as pool, progress_bar(
            total=len(tasks), desc="demo world", unit="clip", enabled=progress
        ) as bar:
            for row in pool.imap_unordered(_make_clip, tasks):
                rows.append(row)
                bar.update()

    rows.sort(key=lambda row: row["path"])
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(manifest, table.getvalue())
    (out_dir / COMPLETE_MARKER).write_text(json.dumps(asdict(config), sort_keys=True) + "\n")
    return manifest


def config_hash(config: DemoWorldConfig) -> str:
    """Short hash naming a cached copy: changes with the config and with the generator version."""
    key = json.dumps({"config": asdict(config), "version": GENERATOR_VERSION}, sort_keys=True)
    return hashlib.sha1(key.encode()).hexdigest()[:10]


def demo_dataset(cache_dir=None, config: DemoWorldConfig = DemoWorldConfig(), progress: bool = True) -> Path:
    """Manifest path of a cached demo world, generated on first use.

    The cache lives in ``cache_dir``, else ``$AVSSL_CACHE_DIR``, else the user cache dir of "avssl", under
    ``demo-world-<config hash>/``. It is (re)generated when its ``.complete`` marker is missing. Generation
    happens in place, so two processes must not create the same copy at the same time.
    """
    if cache_dir is None:
        cache_dir = os.environ.get("AVSSL_CACHE_DIR")
    if cache_dir is None:
        import platformdirs

        cache_dir = platformdirs.user_cache_dir("avssl")
    root = Path(cache_dir) / f"demo-world-{config_hash(config)}"
    if not (root / COMPLETE_MARKER).exists():
        generate_demo_world(root, config, progress=progress)
    return root / "manifest.csv"
