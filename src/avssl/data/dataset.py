"""From a manifest to batches of clips: which videos are usable, where their clips start, how a clip
becomes tensors.

Reading order: ``prepare_entries`` decides once, from the probe index, which files can serve the
requested modalities and clip length (the rest are skipped with a reason); ``ClipDataset`` turns one
(video, start) pair into a dict of tensors; ``collate_clips`` batches them and carries the names of
clips that failed to decode, so the caller can count and log them instead of crashing. Building
datasets and loaders from a config is :mod:`avssl.data.pipeline`'s.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from .. import seeds
from ..errors import MediaError
from .decoded_cache import DecodedCache
from .logmel import LogMelConfig, LogMelSpectrogram
from .manifest import Manifest
from .media import decode_clip
from .probe_index import ProbeIndex
from .samplers import ClipTooShortError
from .transforms import Normalize, VolumeJitter
from .transforms.geometry import chain_steps, float_stage, select_pixels
from .views import ViewPlan, window_modality

log = logging.getLogger("avssl.data")

MODALITIES = ("video", "audio")
# Key prefixes of an unfinished window's pending work (ClipDataset.window): a video window's flip, and
# the seed of its float-stage (or spectrogram) augmentation's generator.
PENDING_FLIP, PENDING_SEED = "flip_", "seed_"


@dataclass(frozen=True)
class VideoEntry:
    """A usable item of a manifest."""

    path: str
    duration: float
    label: int = -1  # index into the class names, -1 when unlabelled
    index: int = 0  # position among the usable entries


@dataclass
class SkipReport:
    """What was left out and why: counted once per file (clips that fail again are counted apart),
    logged, and written next to a run's results."""

    reasons: Counter = field(default_factory=Counter)  # kind of reason (details and numbers left out) -> files
    files: list = field(default_factory=list)  # (path, reason)
    clips_skipped: int = 0  # every skip event, a file failing again in a later clip or epoch included
    _seen: set = field(default_factory=set, repr=False)

    def add(self, path: str, reason: str) -> None:
        self.clips_skipped += 1
        if (str(path), reason) in self._seen:
            return
        self._seen.add((str(path), reason))
        self.reasons[reason_kind(reason)] += 1
        self.files.append((str(path), reason))

    def merge(self, previous: dict, keep=lambda path: True) -> int:
        """Add the files of an earlier report (a ``to_dict()``, e.g. the ``skipped.json`` of the run being
        resumed) whose path passes ``keep``; returns how many were new here. Its clip count is added for
        the clips this report has not counted yet."""
        added = other = 0  # ``other``: files counted by both reports, or left out by ``keep``
        for f in previous.get("files", []):
            path, reason = f.get("path"), f.get("reason")
            if not isinstance(path, str) or not isinstance(reason, str):
                continue
            if keep(path) and (path, reason) not in self._seen:
                self.add(path, reason)
                added += 1
            else:
                other += 1
        clips = previous.get("clips_skipped", 0)
        clips = clips if isinstance(clips, int) else 0
        self.clips_skipped += max(clips - added - other, 0)  # its repeated failures (add counted each file once)
        return added

    def __len__(self) -> int:
        return len(self.files)

    def to_dict(self) -> dict:
        return {"skipped": len(self.files), "reasons": dict(self.reasons), "clips_skipped": self.clips_skipped,
                "files": [{"path": p, "reason": r} for p, r in self.files]}

    def summary(self) -> str:
        if not self.files:
            return "no files skipped"
        exact: dict[str, set] = {}
        for _, r in self.files:
            exact.setdefault(reason_kind(r), set()).add(r)
        # a kind whose files all share one reason keeps its details, e.g. "(2.50 s < 3.00 s)"
        parts = ", ".join(f"{n} {next(iter(exact[k])) if len(exact.get(k, ())) == 1 else k}"
                          for k, n in self.reasons.most_common())
        return f"skipped {len(self.files)} file(s): {parts}"

    def details(self, limit: int = 20) -> str:
        """One line per skipped file with its own reason (the first ``limit``)."""
        lines = [f"  {p}: {r}" for p, r in self.files[:limit]]
        if len(self.files) > limit:
            lines.append(f"  ... and {len(self.files) - limit} more (every file and reason: skipped.json)")
        return "\n".join(lines)


def reason_kind(reason: str) -> str:
    """A skip reason without its per-file details (parenthesised parts, numbers), to count alike ones:
    'unreadable: not a readable media file (moov atom not found)' -> 'unreadable: not a readable media file'."""
    kind = re.sub(r"\s*\([^()]*\)", "", reason)
    kind = re.sub(r"-?\d+(\.\d+)?", "#", kind).strip(" ;:,")
    return kind or reason


@dataclass(frozen=True)
class ClipSpec:
    """What one clip holds: ``num_frames`` video frames at ``fps``, and ``audio_duration`` seconds of
    audio starting at the clip's first frame."""

    modalities: tuple = MODALITIES
    num_frames: int = 8
    fps: float = 30.0
    short_side: int | None = None  # decode-time resize of the short side
    audio_duration: float = 2.0
    sample_rate: int = 16000

    @property
    def video_span(self) -> float:
        """Seconds covered by the video frames."""
        return self.num_frames / self.fps

    @property
    def duration(self) -> float:
        """Seconds of source material a clip needs (the longer of its windows)."""
        spans = []
        if "video" in self.modalities:
            spans.append(self.video_span)
        if "audio" in self.modalities:
            spans.append(self.audio_duration)
        return max(spans)


def prepare_entries(
    manifest: Manifest, index: ProbeIndex, spec: ClipSpec, class_names: list[str] | None = None,
    min_duration: float | None = None,
) -> tuple[list[VideoEntry], SkipReport]:
    """Keep the manifest items that can give a clip of ``spec`` (and last ``min_duration`` seconds,
    what a method's view plan needs); report the others with a reason."""
    need = max(spec.duration, min_duration or 0.0)
    what = "a clip" if need == spec.duration else "the method's views"
    report = SkipReport()
    entries = []
    names = {c: i for i, c in enumerate(class_names or [])}
    for item in manifest:
        if item.path in index.errors:
            report.add(item.path, f"unreadable: {index.errors[item.path]}")
            continue
        info = index.infos.get(item.path)
        if info is None:
            report.add(item.path, "unreadable: not probed")
            continue
        if "video" in spec.modalities and not info.has_video:
            report.add(item.path, "unsupported video codec (no decoder for the file's video stream)"
                       if info.unsupported_video else "no video stream")
            continue
        if "audio" in spec.modalities and not info.has_audio:
            report.add(item.path, "unsupported audio codec (no decoder for the file's audio stream)"
                       if info.unsupported_audio else "no audio track")
            continue
        durations = [info.duration]
        if "video" in spec.modalities and info.video_duration:
            durations.append(info.video_duration)
        if "audio" in spec.modalities and info.audio_duration:
            durations.append(info.audio_duration)
        usable = min(durations)
        if usable + 1e-6 < need:
            report.add(item.path, f"shorter than {what} ({usable:.2f} s < {need:.2f} s)")
            continue
        label = -1
        if item.label not in (None, ""):
            if item.label not in names:
                if class_names is not None:
                    report.add(item.path, f"label {item.label!r} not among the training classes")
                    continue
            else:
                label = names[item.label]
        entries.append(VideoEntry(item.path, usable, label, len(entries)))
    if report:
        log.warning("%s:\n%s", report.summary(), report.details())
    return entries, report


@contextmanager
def _one_torch_thread():
    """Run torch on one thread inside (restored after): per-clip tensors are too small to gain from
    more, and on a busy machine an OpenMP region waits for a descheduled thread (BENCHMARKS.md: the
    log-mel 6-50x slower on 2 threads). DataLoader workers already run on one; this covers the
    main process (``workers=0``, dense extraction). Setting the count costs well under a microsecond."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class SkippedClip:
    """Returned by a dataset item whose file failed to decode; dropped (and counted) by the collate."""

    path: str
    reason: str


class ClipDataset(Dataset):
    """Clips of a list of videos as dicts of tensors.

    ``clips`` (a sampler of ``samplers``) chooses where clips start: one with ``per_epoch`` (a
    ``RandomClipSampler``) gives one freshly jittered clip per video and epoch (training); the others
    (``FixedClipSampler``, ``UniformClipSampler``) a fixed list per video, and then the dataset has
    one item per (video, clip). Random choices come from a
    generator seeded by (seed, epoch, item), so a run is reproducible whatever the worker layout.

    Items: ``video`` float (3, T, crop, crop), ``audio`` float (1, n_mels, frames), ``index`` (the
    video's position), ``clip`` (its clip number), ``label``, ``start`` (seconds).

    With a view ``plan`` (``views``), an item is one video with several windows instead: every window
    of ``plan.windows`` as a tensor under its name (``video_1``, ``audio_neg`` ...), its start under
    ``start_<name>`` (NaN for a window the item does not use, whose tensor is then a copy of the
    item's first window of that modality so batches stack), and the plan's per-item integers. Each
    window is augmented on its own, so two views of one time still differ.

    With ``finish_in_items`` false (set by ``pipeline.make_loader`` where ``data.finish`` finishes
    batches on the training device), clips leave the dataset unfinished: ``video`` the uint8
    (T, crop, crop, 3) result of the chain's crops (``select_pixels``) with ``flip_video`` telling
    whether it is to be mirrored, ``audio`` the float32 waveform (n,) times its volume gain, and
    ``seed_video`` / ``seed_audio`` the seeds of their augmentations' generators; the flip, the rest
    of the video chain, the log-mel and its augmentations are then done where the batch goes.
    """

    def __init__(
        self,
        entries: list[VideoEntry],
        spec: ClipSpec,
        clips,
        video_tf=None,
        volume: VolumeJitter | None = None,
        spec_tf=None,
        logmel: LogMelConfig | None = None,
        cache: DecodedCache | None = None,
        seed: int = 0,
        plan: ViewPlan | None = None,
    ):
        self.entries, self.spec, self.clips, self.cache, self.seed = entries, spec, clips, cache, seed
        self.plan = plan
        self.video_tf, self.volume, self.spec_tf = video_tf, volume, spec_tf
        self.logmel = LogMelSpectrogram(logmel) if (logmel is not None and "audio" in spec.modalities) else None
        self.epoch = 0
        self.finish_in_items = True
        if clips.per_epoch:
            self.items = None
        else:
            self.items = []
            for pos, e in enumerate(entries):
                try:
                    starts = clips(e.duration, key=e.index)
                except ClipTooShortError:  # prepare_entries already skipped these; stay safe anyway
                    continue
                self.items.extend((pos, c, s) for c, s in enumerate(starts))

    def set_epoch(self, epoch: int) -> None:
        """Re-seed the random choices (clip starts, augmentations) for a new epoch."""
        self.epoch = epoch

    def set_plan(self, plan: ViewPlan | None) -> None:
        """Switch the view plan (a curriculum changes it between stages)."""
        self.plan = plan

    def __len__(self) -> int:
        return len(self.entries) if (self.items is None or self.plan is not None) else len(self.items)

    def __getitem__(self, i: int):
        rng = seeds.keyed_rng(self.seed, self.epoch, i)
        if self.plan is not None:
            return self._views(self.entries[i], rng)
        if self.items is None:
            entry, clip = self.entries[i], 0
            try:
                start = self.clips(entry.duration, rng, key=entry.index)[0]
            except ClipTooShortError as e:
                return SkippedClip(entry.path, str(e))
        else:
            vi, clip, start = self.items[i]
            entry = self.entries[vi]
        try:
            frames, wave = self._decode(entry.path, start)
        except MediaError as e:
            return SkippedClip(entry.path, e.reason)
        out = {"index": entry.index, "clip": clip, "label": entry.label, "start": float(start)}
        if frames is not None:
            out.update(self.window("video", frames, rng))
        if wave is not None:
            out.update(self.window("audio", wave, rng))
        return out

    def _views(self, entry: VideoEntry, rng: np.random.Generator):
        """One item of the view plan: decode each distinct start once, augment each window apart."""
        try:
            sample = self.plan(entry.duration, rng)
        except ClipTooShortError as e:
            return SkippedClip(entry.path, str(e))
        wanted: dict[float, set] = {}
        for name in self.plan.windows:
            if sample.starts[name] is not None:
                wanted.setdefault(sample.starts[name], set()).add(window_modality(name))
        try:
            decoded = {t: self._decode(entry.path, t, "video" in m, "audio" in m) for t, m in wanted.items()}
        except MediaError as e:
            return SkippedClip(entry.path, e.reason)
        out = {"index": entry.index, "clip": 0, "label": entry.label, **sample.info}
        first: dict[str, str] = {}
        for name in self.plan.windows:
            modality, start = window_modality(name), sample.starts[name]
            out[f"start_{name}"] = float("nan") if start is None else float(start)
            if start is None:
                for prefix in ("", PENDING_FLIP, PENDING_SEED):
                    if prefix + first[modality] in out:
                        out[prefix + name] = out[prefix + first[modality]]
                continue
            first.setdefault(modality, name)
            frames, wave = decoded[start]
            out.update(self.window(name, frames if modality == "video" else wave, rng))
        return out

    def window(self, name: str, decoded, rng) -> dict:
        """Window ``name``'s tensors (``video``, ``audio``, ``video_1``, ``audio_neg`` ...) from its decoded
        frames or waveform: ``{name: tensor}``, finished, or unfinished (see the class docstring) with
        its pending work: a video window's flip under ``flip_<name>``, and the seed of its float-stage
        or spectrogram augmentation's generator under ``seed_<name>`` (-1: none)."""
        if self.finish_in_items:
            video = window_modality(name) == "video"
            return {name: self.video_tensor(decoded, rng) if video else self.audio_tensor(decoded, rng)}
        if window_modality(name) == "video":
            with _one_torch_thread():  # a multi-scale crop resizes here
                x, flip, steps = select_pixels(decoded, self.video_tf, rng)
            crop = torch.from_numpy(np.ascontiguousarray(x.permute(1, 2, 3, 0).numpy()))  # (T, h, w, 3): the decode's layout
            return {name: crop, PENDING_FLIP + name: flip, PENDING_SEED + name: stage_seed(steps, rng)}
        wave, gain = np.asarray(decoded, np.float32), self._gain(rng)  # the product of_clip pads: same numbers
        wave = torch.from_numpy(wave.copy() if gain is None else np.multiply(wave, np.float32(gain)))
        return {name: wave, PENDING_SEED + name: stage_seed(chain_steps(self.spec_tf), rng)}

    def video_tensor(self, frames, rng) -> torch.Tensor:
        """Decoded frames -> the model's video input, through this dataset's transforms: crops and flips
        on the uint8 clip with ``rng``, the rest (colour, blur ...) with a generator seeded from it."""
        with _one_torch_thread():
            x, flip, steps = select_pixels(frames, self.video_tf, rng)
            return float_stage(x, flip, steps, seeded(stage_seed(steps, rng)))

    def audio_tensor(self, wave, rng) -> torch.Tensor:
        """A decoded waveform -> the model's log-mel input: its volume jitter (``volume``, one gain drawn
        from ``rng``) folded into the log-mel's padding pass (``LogMelSpectrogram.of_clip``), then this
        dataset's spectrogram transforms, with a generator seeded from ``rng``."""
        with _one_torch_thread():
            s = self.logmel.of_clip(np.asarray(wave, np.float32), self._gain(rng))
            steps = chain_steps(self.spec_tf)
            return self.spec_tf(s, seeded(stage_seed(steps, rng))) if steps else s

    def _gain(self, rng) -> float | None:
        return self.volume.draw(rng) if self.volume is not None else None

    def _decode(self, path: str, start: float, want_v: bool | None = None, want_a: bool | None = None):
        spec = self.spec
        want_v = "video" in spec.modalities if want_v is None else want_v
        want_a = "audio" in spec.modalities if want_a is None else want_a
        if self.cache is not None:
            media = self.cache.get(path)
            frames = media.video_clip(start, spec.num_frames) if want_v else None
            wave = media.audio_clip(start, spec.audio_duration) if want_a else None
            return frames, wave
        return decode_clip(
            path, start, spec.num_frames, spec.fps, spec.audio_duration, spec.sample_rate,
            short_side=spec.short_side, video=want_v, audio=want_a,
        )


def stage_seed(steps: list, rng) -> int:
    """The seed of the generator that the augmentations in ``steps`` (a float stage or a spectrogram
    chain) draw from, drawn from the item's ``rng``; -1 when they draw nothing (a Normalize alone, no
    steps): then the item's draws are those of a chain without them. A seed rather than ``rng`` itself
    so that an item's later draws do not depend on where those steps run (``data.finish``)."""
    if rng is None or all(isinstance(s, Normalize) for s in steps):
        return -1
    return int(rng.integers(2**63 - 1))


def seeded(seed: int) -> np.random.Generator | None:
    """The generator of a :func:`stage_seed` (None for -1)."""
    return None if seed < 0 else np.random.default_rng(seed)


def collate_clips(batch: list) -> dict:
    """Stack the good items; list the skipped ones under ``"skipped"`` as (path, reason)."""
    good = [b for b in batch if not isinstance(b, SkippedClip)]
    skipped = [(b.path, b.reason) for b in batch if isinstance(b, SkippedClip)]
    out: dict = {"skipped": skipped}
    if not good:
        return out
    for key in good[0]:
        vals = [b[key] for b in good]
        # Tensors through default_collate: torch.stack, but in a DataLoader worker straight into shared
        # memory, where the batch goes to reach the main process anyway (a plain stack is copied there
        # once more when the batch is sent: 4.8 MB per xdc-paper clip).
        out[key] = default_collate(vals) if torch.is_tensor(vals[0]) else torch.tensor(vals)
    return out
