"""Still images turned into static video clips: the "Superv ImageNet" baseline of XDC Tables 1, 3 and 5.

XDC Sec. 4.2, Study 3: "For ImageNet, we inflate the images into static video clips (repeating the same
frame) and pretrain our video model on this dataset." :func:`inflate_images` writes every image of an
image folder with one subfolder per class (ImageNet's ``train/<wnid>/*.JPEG``) as an mp4 of the same
frame repeated for ``seconds`` (3 by default: more than the 2 s of audio an XDC clip reads), with a silent audio track (avssl's supervised pretraining reads both
streams; the audio encoder learns nothing from silence and only the video encoder is the baseline, as
the paper's ESC50 cells of this row are "NA"). The result is a labelled manifest for
``avssl pretrain --method supervised``.

Usage::

    avssl data inflate-images imagenet/train --videos imagenet-static --out imagenet-static.csv
    avssl pretrain --method supervised --preset xdc-paper --data imagenet-static.csv --out runs/superv-imagenet

Images already written are kept (a rerun continues an interrupted conversion); unreadable images are
skipped and counted.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from avssl.data.manifest import Manifest, ManifestItem
from avssl.errors import ConfigError

log = logging.getLogger("avssl.data")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})


@dataclass
class InflateReport:
    images: int = 0
    written: int = 0
    kept: int = 0  # already converted by an earlier call
    unreadable: dict[str, str] = field(default_factory=dict)  # image -> reason

    def summary(self) -> str:
        return (f"{self.images} images: {self.written} written, {self.kept} kept from an earlier run, "
                f"{len(self.unreadable)} unreadable")


def find_images(root) -> list[tuple[str, str]]:
    """(image path, class) for every image in the class subfolders of ``root`` (any depth below the class)."""
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise ConfigError(f"{root} does not exist or is not a folder")
    found = []
    for cls in sorted(os.listdir(root)):
        folder = os.path.join(root, cls)
        if not os.path.isdir(folder) or cls.startswith("."):
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            found += [(os.path.join(dirpath, name), cls) for name in sorted(filenames)
                      if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS]
    if not found:
        raise ConfigError(f"{root} has no images in class subfolders (expected {root}/<class>/<image>.jpg)")
    return found


def static_frames(image: np.ndarray, frames: int, short_side: int) -> np.ndarray:
    """``(frames, H, W, 3)`` uint8: the image scaled to ``short_side`` (sizes made even for H.264), repeated."""
    from PIL import Image

    img = Image.fromarray(image)
    scale = short_side / min(img.size)
    w, h = (max(2, int(round(d * scale)) // 2 * 2) for d in img.size)
    still = np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.uint8)
    return np.broadcast_to(still, (frames, *still.shape)).copy()


def inflate_images(image_root, video_root, *, seconds: float = 3.0, fps: float = 30.0, short_side: int = 256,
                   sample_rate: int = 16000) -> tuple[Manifest, InflateReport]:
    """Write ``<video_root>/<class>/<image stem>.mp4`` for every image below ``image_root``'s class
    folders; returns the labelled manifest of the clips and what was done."""
    from PIL import Image, UnidentifiedImageError

    from avssl.data.writer import write_av

    if seconds <= 0 or fps <= 0 or short_side < 2:
        raise ConfigError(f"seconds and fps must be > 0 and short_side >= 2, got {seconds}, {fps}, {short_side}")
    images = find_images(image_root)
    video_root = os.path.abspath(os.fspath(video_root))
    frames = max(1, int(round(seconds * fps)))
    silence = np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)
    report, items = InflateReport(images=len(images)), []
    for path, cls in images:
        out = os.path.join(video_root, cls, os.path.splitext(os.path.basename(path))[0] + ".mp4")
        if os.path.isfile(out):
            report.kept += 1
        else:
            try:
                with Image.open(path) as img:
                    rgb = np.asarray(img.convert("RGB"))
            except (OSError, UnidentifiedImageError, ValueError) as e:
                report.unreadable[path] = f"{type(e).__name__}: {e}"
                continue
            os.makedirs(os.path.dirname(out), exist_ok=True)
            write_av(out, static_frames(rgb, frames, short_side), fps, silence, sample_rate)
            report.written += 1
        items.append(ManifestItem(out, cls, None, {"image": path}))
    if report.unreadable:
        first = next(iter(report.unreadable.items()))
        log.warning("%d of %d images were unreadable and skipped (first: %s: %s)", len(report.unreadable),
                    len(images), *first)
    if not items:
        raise ConfigError(f"none of the {len(images)} images under {image_root} could be read")
    return Manifest(items, video_root), report
