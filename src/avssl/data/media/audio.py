"""Audio samples of a window, downmixed to mono and resampled on a grid shared with whole-file decodes.

Usage (inside a decode, see :mod:`avssl.data.media.decode`)::

    sink = AudioSink(src, sample_rate, first, stop)
"""
from __future__ import annotations

import math

import av
import numpy as np

from avssl.errors import MediaError

from .source import AUDIO_SLACK, EPS, SHORTFALL, Reseek, Source, frame_time, shortfall, time_base_of

class AudioSink:
    """Decoded audio, downmixed to mono and resampled to ``rate``, as output samples with global
    indices (sample k is at time k / rate). Resampling starts on an input sample whose time is
    also on the output grid, so a window decoded after a seek has the same samples as the same
    window cut from a whole-file decode (Opus: within its decoder's convergence, see
    :data:`OPUS_PREROLL`).

    Except by up to 1 ms in Matroska/WebM, whose timestamps are whole milliseconds: a window after a
    seek is placed by the rounded timestamp of the frame resampling starts on, the whole-file decode
    by counting samples from the first frame. Measured (50 windows per file): Vorbis at 44.1/48 kHz
    (23.2/21.3 ms packets) and AAC at 44.1 kHz up to 0.5 ms either way; Opus, whose packets start at
    13.5 + 20k ms (a 6.5 ms pre-skip), 0.5 ms late, or 1 ms when resampling starts on the first frame
    after opening, which the decoder trims by the pre-skip and re-stamps rounded again. The true
    times are lost in the file; snapping to the codec's frame grid would fix fixed-frame codecs (Opus:
    2.5 ms steps) only, and 1 ms is 1/33 of a video frame, so windows keep the timestamps' shift."""

    def __init__(self, src: Source, rate: int, first: int, stop: int | None):
        self.src, self.stream, self.rate = src, src.audio, rate
        self.time_base = time_base_of(self.stream)
        self.first, self.stop = first, stop  # window [first, stop) in output samples; stop None: to the end
        self.needed, self.lead_in = audio_margins(self.stream)
        # AAC decoders also emit the encoder's padding after the last real sample; a precise
        # stream duration in the header (mp4) says where the real audio ends.
        self.declared_end = src.end_of(self.stream, precise=True)
        self.limit = None if self.declared_end is None else round(self.declared_end * rate)
        self.may_reseek = False
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self.begin = None  # global index of the first resampled sample
        self.skipped_to = None  # end (seconds) of the audio skipped as long before the window
        self.chunks: list[np.ndarray] = []
        self.count = 0

    def _available(self) -> int:
        """Global index one past the last real sample decoded so far."""
        end = self.begin + self.count
        return end if self.limit is None else min(end, self.limit)

    def _done(self) -> bool:
        return self.stop is not None and self.begin is not None and self._available() >= self.stop

    def _add(self, frames):
        for out in frames:
            if out is not None:  # a pass-through resampler flushes as [None]
                samples = out.to_ndarray().reshape(-1)
                self.chunks.append(samples)
                self.count += samples.size

    def _start(self, frame, t: float):
        """Trim the first frame so resampling starts on a shared input/output grid point at or
        after time 0; returns the trimmed frame, or None if the whole frame lies before."""
        rate_in = frame.sample_rate
        g = math.gcd(rate_in, self.rate)
        period = rate_in // g  # input samples between points on both grids
        index = round(t * rate_in)
        aligned = -(-max(index, 0) // period) * period
        skip = aligned - index
        if skip >= frame.samples:
            return None
        self.begin = aligned // period * (self.rate // g)
        if skip:
            array = frame.to_ndarray()
            step = 1 if frame.format.is_planar else len(frame.layout.channels)
            trimmed = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(array[:, skip * step :]), format=frame.format.name, layout=frame.layout.name
            )
            trimmed.sample_rate = rate_in
            frame = trimmed
        return frame

    def _long_before(self, frame, t: float) -> bool:
        """Whether ``frame`` ends so long before the window that resampling can start after it: the
        next frame's first grid point (grid points are 1 / gcd(rates) s apart) still leaves the
        resampler the lead-in of real samples before the window, so the window's samples are the
        same. The decoder has decoded the frame anyway, so its state is unchanged."""
        grid = 1 / math.gcd(frame.sample_rate, self.rate)
        return t + frame.samples / frame.sample_rate < self.first / self.rate - self.lead_in - grid

    def push(self, frame) -> bool:
        if self.begin is None:
            t = frame_time(self.src, frame, self.time_base)
            stamped = t is not None
            if not stamped:
                t = 0.0
            if self.may_reseek and t > self.first / self.rate - self.needed + EPS:
                raise Reseek
            # The seek went to the video keyframe, often seconds before the window: skip converting
            # and resampling that audio.
            if stamped and self._long_before(frame, t):
                self.skipped_to = t + frame.samples / frame.sample_rate
                return False
            frame = self._start(frame, t)
            if frame is None:
                return False
        frame.pts = None  # we keep time ourselves; no timestamp-based resampler behaviour
        try:
            self._add(self.resampler.resample(frame))
        except ValueError as e:  # the stream changed rate or layout mid-way
            raise MediaError(self.src.path, f"audio format changes mid-stream ({e})") from None
        return self._done()

    def finish(self, reason: str | None) -> np.ndarray:
        """The stream ended (cleanly, or with FFmpeg's ``reason``) or the window is complete: the
        window's samples, zero-padded where the audio has not started yet or has just ended."""
        path = self.src.path
        if self.begin is None and self.skipped_to is not None:
            # All the audio ended long before the window: no samples, which the checks below report.
            self.begin = math.ceil(self.skipped_to * self.rate - EPS)
        if self.begin is None:
            if self.may_reseek:
                raise Reseek
            raise MediaError(path, "no decodable audio" + (f" ({reason})" if reason else ""))
        if not self._done():
            self._add(self.resampler.resample(None))
        available = self._available()
        self.audio_end = available / self.rate
        why = shortfall(self.audio_end, self.declared_end, SHORTFALL, reason)
        if self.stop is None:
            if why:
                raise MediaError(path, f"audio data ends at {self.audio_end:.3f} s{why}")
            stop = available
        else:
            stop = self.stop
            if (stop - available) / self.rate > AUDIO_SLACK:
                span = f"[{self.first / self.rate:.3f}, {stop / self.rate:.3f}]"
                raise MediaError(path, f"window {span} s exceeds audio duration {self.audio_end:.3f} s{why}")
        have = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        out = np.zeros(stop - self.first, np.float32)
        lo, hi = max(self.first, self.begin), min(stop, available)
        if hi > lo:
            out[lo - self.first : hi - self.first] = have[lo - self.begin : hi - self.begin]
        return out


# Demuxers that position every track at its own sample at or before the seek's keyframe time
# (libavformat's mov/mp4 reader), so audio never starts after the seek target. Matroska and FLV drop
# the audio before the keyframe instead (the first audio packet then starts up to one codec frame
# after it: 5-8% of seeks landed after the target). MPEG-TS and AVI landed at or before it on one
# file each, but their seeks are generic (timestamp search, sparse index): they keep the extra frame.
AUDIO_AT_OR_BEFORE_KEYFRAME = frozenset({"mov,mp4,m4a,3gp,3g2,mj2"})


# Opus decoders converge only gradually after a seek (CELT predicts each band's energy from the previous
# frame's; SILK's filters and gains carry over too): no pre-roll makes the output exact. Measured at
# 16 kHz against whole-file decodes (0.5 s windows, 40 per file), largest error with that much decoded
# before the window: CELT (tones, music; 64-160 kbit/s) 0.23-0.29 with none, 2-3.4e-2 with 80 ms (RFC
# 7845's and Matroska's SeekPreRoll: "perceptually" converged), 6e-4 with 0.2 s, 2e-5 with 0.3 s;
# SILK and hybrid (synthetic speech, 12-32 kbit/s) 0.16-0.19 with 80 ms, 1.1-1.6e-2 with 0.2 s,
# 3-7e-3 with 0.4 s, 1.4e-5 with 0.5 s. (libopus's decoder converges as FFmpeg's does: 0.43, 0.29,
# 0.16, 0.10 in the 1st-4th 20 ms packet.) The codecs' own coding error: 4e-3-2.5e-2 (CELT), 4e-2
# (SILK) rms. Each 0.1 s of lead-in also costs, on average, 0.1 s more video decoded from an earlier
# keyframe (3 frames per clip at 30 fps). 0.2 s: below the coding error for both.
OPUS_PREROLL = 0.2
# libopus's default packet duration: how late after a Matroska keyframe the first audio packet may
# start; longer packets only cost a second seek, never samples.
OPUS_PACKET = 0.02


def vorbis_packet_samples(codec) -> int:
    """The longest Vorbis packet's output in samples: half the long block size, from the identification
    header in the extradata (Xiph-laced headers in Matroska and Ogg); the largest the format allows
    (8192) if it cannot be read."""
    data = bytes(codec.extradata or b"")
    at = data.find(b"\x01vorbis")
    if at >= 0 and len(data) > at + 28:
        return (1 << (data[at + 28] >> 4)) // 2
    return 8192 // 2


def audio_margins(stream) -> tuple[float, float]:
    """(needed, lead_in) in seconds. ``needed``: audio that must be decoded before a window: one
    codec frame, because AAC-like codecs rebuild a frame from the previous one (MDCT overlap; the
    first frame decoded after a seek is wrong, the next ones are the continuous decode's), and
    10 ms for the resampler's history (its start-up changes 1-2 ms of output at 8-96 kHz -> 16 kHz).

    ``lead_in``: how far before the window to seek. AAC-LC in mp4/mov: ``needed``, since the audio
    starts at or before the seek target there. Elsewhere one frame more: so that a seek landing on a
    keyframe exactly there still satisfies ``needed`` when the first audio packet comes up to a frame
    after the keyframe (Matroska, FLV); and for other codecs, whose decoders may need more than one
    frame (AAC Main's predictor, LTP and HE-AAC's SBR keep state longer; MP3's bit reservoir does:
    with one frame + 10 ms a window's first 5-22 ms came out wrong, by up to 0.4; with two, exact).
    Where the audio starts later than ``needed`` anyway, :class:`AudioSink` asks for a seek further
    back: for AAC-LC the extra frame only saves that second seek.

    Opus and Vorbis report a frame size of 0 when the file is opened (their packets' lengths vary), and
    got 10 ms. Opus: ``needed`` is :data:`OPUS_PREROLL` + 10 ms (with 10 ms windows came out wrong by
    up to 0.43 in their first 20 ms and 0.19 after), ``lead_in`` one 20 ms packet more outside mp4/mov.
    Vorbis: FFmpeg's decoder outputs nothing for the first packet after a seek and the continuous
    decode's samples from the next one (the previous block's overlap is all it needs: bit-identical
    windows at 48 kHz), so ``needed`` stays 10 ms; but the seek must reach back over that withheld
    packet and, in Matroska, one more, each at most half the long block (from the header): with 20 ms,
    22-27 of 50 audio-only seeks started too late and seeked again 1 s further back; now none."""
    codec = stream.codec_context
    rate = codec.sample_rate
    at_or_before = stream.container.format.name in AUDIO_AT_OR_BEFORE_KEYFRAME
    kind = codec.codec.canonical_name  # the format, whichever decoder (FFmpeg's or libopus/libvorbis)
    if kind == "opus":
        needed = OPUS_PREROLL + 0.01
        return needed, needed + (0.0 if at_or_before else OPUS_PACKET)
    if kind == "vorbis":
        packet = vorbis_packet_samples(codec) / rate if rate else 0.0
        return 0.01, 0.01 + (1 if at_or_before else 2) * packet
    frame = codec.frame_size / rate if rate else 0.0
    needed = frame + 0.01
    if frame > 0 and codec.name == "aac" and codec.profile == "LC" and at_or_before:
        return needed, needed
    return needed, needed + max(frame, 0.01)
