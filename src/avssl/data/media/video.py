"""Video frames on display at a clip's target times, converted to RGB in one filter-graph pass.

Usage (inside a decode, see :mod:`avssl.data.media.decode`)::

    picker = VideoPicker(src, start, fps, num_frames, short_side)
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from fractions import Fraction

import av
import numpy as np

from avssl.errors import MediaError

from .source import EPS, SHORTFALL, Reseek, Source, frame_time, seconds, shortfall, time_base_of


class GraphCache:
    """Configured filter graphs of this process, least recently used first. Building one costs
    0.4-3.4 ms, as much as converting a clip's frames, so graphs are kept between clips and files.
    A graph is taken out while in use and put back idle (every pushed frame pulled), so a cached
    graph holds no frame and an error mid-use just drops it. A forked child (DataLoader worker)
    starts with an empty cache instead of using copies of its parent's graphs."""

    def __init__(self, size: int):
        self.size, self.pid, self.graphs = size, os.getpid(), OrderedDict()

    def take(self, key):
        if self.pid != os.getpid():
            self.pid, self.graphs = os.getpid(), OrderedDict()
        return self.graphs.pop(key, None)

    def put(self, key, graph):
        self.graphs[key] = graph
        while len(self.graphs) > self.size:
            self.graphs.popitem(last=False)


# Datasets mix a few frame sizes (Kinetics: a handful of common ones); a worker needs one graph each.
GRAPHS = GraphCache(16)


class RGB:
    """Converts decoded frames to RGB, resized so the shorter side is ``short_side``, in one ffmpeg
    filter-graph pass (swscale does scaling and colour conversion together, much faster than
    resizing full-size RGB arrays afterwards)."""

    def __init__(self, short_side: int | None):
        self.short_side = short_side

    def size(self, width: int, height: int) -> tuple[int, int]:
        s = self.short_side
        if s is None:
            return width, height
        if width <= height:
            return s, max(1, round(height * s / width))
        return max(1, round(width * s / height)), s

    def _build(self, frame):
        graph = av.filter.Graph()
        # One thread: no filter or swscale threads per cached graph (their output is identical), and
        # a graph with threads cannot even be freed in a forked child, whose copy lacks the threads.
        graph.threads = 1
        source = graph.add_buffer(
            width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, 1000)
        )
        nodes = [source]
        width, height = self.size(frame.width, frame.height)
        if (width, height) != (frame.width, frame.height):
            nodes.append(graph.add("scale", f"{width}:{height}:flags=bilinear"))
        nodes += [graph.add("format", "rgb24"), graph.add("buffersink")]
        graph.link_nodes(*nodes).configure()
        return graph

    def __call__(self, frame) -> np.ndarray:
        # Everything the conversion depends on (a stream may also change size mid-way).
        key = (frame.width, frame.height, frame.format.name, frame.colorspace, frame.color_range, self.short_side)
        graph = GRAPHS.take(key) or self._build(frame)
        graph.vpush(frame)
        rgb = graph.vpull().to_ndarray()
        GRAPHS.put(key, graph)
        return rgb


class VideoPicker:
    """Collects the frames on display at times ``start + i / fps``: target time t shows the last
    source frame whose timestamp is <= t. Source frames no target needs are never converted.
    ``num_frames=None`` collects every target time before the video ends (whole-file decoding)."""

    def __init__(self, src: Source, start: float, fps: float, num_frames: int | None, short_side: int | None):
        self.src, self.stream = src, src.video
        self.time_base = time_base_of(self.stream)
        self.start, self.fps, self.num_frames = start, fps, num_frames
        self.rgb = RGB(short_side)
        self.may_reseek = False
        self.frames: list[np.ndarray] = []
        self.prev = None  # [time, duration, VideoFrame, its RGB array or None]
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.default_duration = 1 / float(rate) if rate else 1 / fps
        self.declared_end = src.end_of(self.stream, precise=True)
        # Timestamps are rounded to the stream's time base (1 ms in Matroska/WebM), so a frame
        # stamped 67 ms in 30 fps video is really at 66.67 ms: snap times within half a tick of
        # the frame-rate grid onto it, so that which frame is on display at a target time does
        # not depend on the rounding direction.
        grid_rate = self.stream.guessed_rate or self.stream.average_rate
        self.grid = float(grid_rate) if grid_rate else None
        self.half_tick = float(self.stream.time_base) / 2 + EPS
        # Source.pump's early stop: no frame stamped after this tick can be on display at a target
        # time (a tick of slack over the grid snapping above); None (decode to the end) for a whole file.
        self.last_tick = None
        self.past_clip = False  # a packet after last_tick was demuxed: the video goes on past the clip
        if num_frames is not None:
            num, den = self.time_base
            last = self._target(num_frames - 1) + src.origin + self.half_tick
            self.last_tick = math.floor(last * den / num) + 1

    def _target(self, i: int) -> float:
        return self.start + i / self.fps

    def _full(self) -> bool:
        return self.num_frames is not None and len(self.frames) >= self.num_frames

    def _emit_prev_until(self, t: float):
        """Give the previous frame to every pending target time before ``t``."""
        prev = self.prev
        while not self._full() and self._target(len(self.frames)) < t - EPS:
            if prev[3] is None:
                prev[3] = self.rgb(prev[2])
            self.frames.append(prev[3])

    def _done(self) -> bool:
        """All targets have frames, and the video is known to extend to within one frame of the
        clip's end (so ``finish`` could not fail): nothing more to decode."""
        if self.num_frames is None or len(self.frames) < self.num_frames:
            return False
        if self.past_clip:
            return True
        last_time, last_duration = self.prev[0], self.prev[1]
        return last_time + 2 * last_duration >= self._target(self.num_frames) - EPS

    def push(self, frame) -> bool:
        t = frame_time(self.src, frame, self.time_base)
        if t is None:  # no timestamp: it follows the previous frame
            t = self.prev[0] + self.prev[1] if self.prev is not None else 0.0
        elif self.grid:
            on_grid = round(t * self.grid) / self.grid
            if abs(on_grid - t) <= self.half_tick:
                t = on_grid
        duration = self.default_duration
        if frame.duration:  # in the stream's time base, as the packets it was decoded from
            duration = seconds(frame.duration, self.time_base)
        entry = [t, duration, frame, None]
        if self.prev is None and t > self.start + EPS:
            if self.may_reseek:
                raise Reseek
            if t > self.start + duration + EPS:
                raise MediaError(
                    self.src.path, f"clip starts at {self.start:.3f} s, before the first video frame at {t:.3f} s"
                )
            self.prev = entry  # less than a frame late: the first frame also stands in before it
        if self.prev is not None:
            self._emit_prev_until(t)
        self.prev = entry
        return self._done()

    def past_needed(self):
        """Every frame up to ``last_tick`` has been pushed and the stream has packets after it: the
        frame on display at each remaining target is the last one pushed, as the next frame (after
        the last target) would have shown."""
        if self.prev is None:  # nothing decoded: ``finish`` reports it (or seeks back)
            return
        self.past_clip = True
        self._emit_prev_until(math.inf)

    def finish(self, reason: str | None) -> np.ndarray:
        """The stream ended (cleanly, or with FFmpeg's ``reason``) or the clip is complete: fill
        the remaining targets, or raise if the video is too short for them."""
        path = self.src.path
        if self.prev is None:
            if self.may_reseek:
                raise Reseek
            raise MediaError(path, "no decodable video frames" + (f" ({reason})" if reason else ""))
        if self._done():
            return np.stack(self.frames)
        last_time, last_duration = self.prev[0], self.prev[1]
        end = last_time + last_duration
        why = shortfall(end, self.declared_end, max(SHORTFALL, 2 * last_duration), reason)
        if self.num_frames is None:
            if why:
                raise MediaError(path, f"video data ends at {end:.3f} s{why}")
            self._emit_prev_until(end)
        else:
            clip_end = self._target(self.num_frames)
            if clip_end > end + last_duration + EPS:
                span = f"[{self.start:.3f}, {clip_end:.3f}]"
                raise MediaError(path, f"clip {span} s exceeds video duration {end:.3f} s{why}")
            self._emit_prev_until(math.inf)
        self.video_end, self.frame_duration = end, last_duration
        return np.stack(self.frames)
