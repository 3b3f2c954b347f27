"""The demo world's video: the object (shape, texture, motion) over a panning, textured background.

Usage: ``frames = render_video(CLASSES[label], events, nuisances, config)`` (uint8 ``(T, H, W, 3)``)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import PALETTE, ClassSpec, DemoWorldConfig, since_event

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
    since, progress, k = since_event(events, t)
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
    return shade[..., None] * np.asarray(PALETTE[nuis["background"]], dtype=np.float32)


def render_video(spec: ClassSpec, events: np.ndarray, nuis: dict, config: DemoWorldConfig) -> np.ndarray:
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
    colour = np.asarray(PALETTE[nuis["object_colour"]], dtype=np.float32)
    shade = 0.6 + 0.4 * _object_texture(spec.texture, u, v)[..., None]
    flash = per_frame(pose.flash)[..., None]
    surface = (shade * colour) * (1 - flash) + 255 * flash
    obj = body * surface + (1 - body) * 20.0  # outline colour: near black
    frames = frames * (1 - cover) + obj * cover
    return np.clip(frames, 0, 255).round().astype(np.uint8)
