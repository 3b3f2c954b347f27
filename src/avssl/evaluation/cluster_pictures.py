"""Pictures of a clustering's videos: a video's middle frame, its log-mel, the grid of the clips nearest
each centroid, and a short looping GIF preview of a clip.

Usage: ``render_grid([(caption, [path, ...]), ...], "out/video_grid.png", "video clustering")``
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..data.pipeline import logmel_config
from ..data.logmel import LogMelSpectrogram
from ..data.media import decode_audio, decode_video, probe
from ..errors import MediaError

log = logging.getLogger("avssl.evaluation")

CELL = 96  # pixels of one frame in the grid
CAPTION = 220  # width of the caption column


def middle_frame(path: str, size: int = CELL) -> Image.Image:
    """The frame in the middle of a video, as a ``size`` x ``size`` image (grey with a note if none)."""
    try:
        info = probe(path)
        if not info.has_video:
            return _placeholder(size, size, "no video")
        mid = (info.video_duration or info.duration) / 2
        frame = decode_video(path, mid, 1, info.fps or 30.0, short_side=size)[0]
        return Image.fromarray(frame).resize((size, size))
    except MediaError as e:
        log.warning("cluster grid: %s", e)
        return _placeholder(size, size, "unreadable")


def logmel_image(path: str, audio_cfg, width: int = CELL, height: int = CELL // 2) -> Image.Image:
    """Log-mel of the audio window in the middle of a file, low frequencies at the bottom."""
    try:
        info = probe(path)
        dur = info.audio_duration or info.duration
        start = max(0.0, (dur - audio_cfg.duration) / 2)
        wave = decode_audio(path, start, audio_cfg.duration, audio_cfg.sample_rate)
    except MediaError as e:
        log.warning("cluster grid: %s", e)
        return _placeholder(width, height, "no audio")
    import matplotlib

    with torch.no_grad():
        spec = LogMelSpectrogram(logmel_config(audio_cfg))(torch.from_numpy(wave))[0, 0].numpy()
    spec = (spec - spec.min()) / max(float(spec.max() - spec.min()), 1e-6)
    rgb = (matplotlib.colormaps["magma"](spec[::-1])[..., :3] * 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((width, height))


def _placeholder(width: int, height: int, text: str) -> Image.Image:
    img = Image.new("RGB", (width, height), (128, 128, 128))
    ImageDraw.Draw(img).text((4, height // 2 - 6), text, fill=(255, 255, 255))
    return img


def render_grid(rows: list[tuple[str, list[str]]], out_png, title: str, audio_cfg=None, cells_dir=None) -> Path:
    """One row per (caption, video paths): the caption, then each video's middle frame (and its
    log-mel under it when ``audio_cfg`` is given). With ``cells_dir``, each video's picture is also
    written alone, as ``cells_dir/<row>_<column>.png`` (the HTML page shows those, captioned as text)."""
    cols = max((len(p) for _, p in rows), default=1) or 1
    cell_h = CELL + (CELL // 2 if audio_cfg is not None else 0)
    gap, top = 4, 28
    img = Image.new("RGB", (CAPTION + cols * (CELL + gap) + gap, top + len(rows) * (cell_h + gap) + gap), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    draw.text((gap, 8), title, fill="black", font=font)
    for r, (caption, paths) in enumerate(rows):
        y = top + r * (cell_h + gap)
        draw.multiline_text((gap, y + 4), caption, fill="black", font=font, spacing=3)
        for c, path in enumerate(paths):
            x = CAPTION + c * (CELL + gap)
            img.paste(middle_frame(path), (x, y))
            if audio_cfg is not None:
                img.paste(logmel_image(path, audio_cfg), (x, y + CELL))
            if cells_dir is not None:
                Path(cells_dir).mkdir(parents=True, exist_ok=True)
                img.crop((x, y, x + CELL, y + cell_h)).save(Path(cells_dir) / f"{r}_{c}.png")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    img.save(out_png)
    return out_png


def clip_preview(path: str, out_gif, audio_cfg=None, frames: int = 8, seconds: float = 2.0) -> bool:
    """A short looping GIF of the ``seconds`` in the middle of a clip (``frames`` frames, ``CELL`` pixels;
    with ``audio_cfg`` the log-mel strip under each frame, as in the grid). False when the clip has no
    readable video."""
    try:
        info = probe(path)
        if not info.has_video:
            return False
        duration = info.video_duration or info.duration
        span = min(seconds, duration)
        video = decode_video(path, max(0.0, (duration - span) / 2), frames, frames / max(span, 1e-3),
                             short_side=CELL)
    except MediaError as e:
        log.warning("clip preview: %s", e)
        return False
    strip = logmel_image(path, audio_cfg) if audio_cfg is not None else None
    pictures = []
    for frame in video:
        img = Image.fromarray(frame).resize((CELL, CELL))
        if strip is not None:
            both = Image.new("RGB", (CELL, CELL + strip.height))
            both.paste(img, (0, 0))
            both.paste(strip, (0, CELL))
            img = both
        pictures.append(img)
    out_gif = Path(out_gif)
    out_gif.parent.mkdir(parents=True, exist_ok=True)
    pictures[0].save(out_gif, save_all=True, append_images=pictures[1:], duration=int(1000 * span / frames),
                     loop=0)
    return True


def short_text(text, n: int = 28) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"
