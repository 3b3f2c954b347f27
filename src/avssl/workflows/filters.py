"""Pictures of what a video encoder learnt in its first layer (XDC Fig. 3: R(2+1)D conv_1 filters of
XDC vs fully supervised pretraining), one row per run, for comparing runs side by side.

R(2+1)D's first layer is factorised: ``stem.0``, a (1, 7, 7) spatial convolution on RGB, then
``stem.3``, a (3, 1, 1) temporal convolution over its outputs. Spatial filters are drawn as RGB
tiles (each filter scaled to [0, 1] on its own, so the pattern shows whatever its norm); temporal
filters as intensity strips, one per output channel: rows are its input channels, columns its 3
time taps, blue negative and red positive (scaled by the filter's largest magnitude). R3D's stem
is one (3, 7, 7) convolution: each filter is drawn as its time slices side by side, and there is no
separate temporal layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:  # numpy and torch are imported where the pictures are drawn, so avssl --help stays fast
    import numpy as np
    from torch import nn


@dataclass
class FirstLayer:
    """The first convolutions of a video encoder as arrays."""

    spatial_name: str
    spatial: np.ndarray  # (N, kt, kh, kw, 3): RGB filters, kt time slices
    temporal_name: str | None
    temporal: np.ndarray | None  # (M, C, kt): output channel, input channel, time tap


def first_layer(encoder: nn.Module) -> FirstLayer:
    """The encoder's first RGB convolution and, when it is spatial only, the temporal one after it."""
    from torch import nn

    convs = [(name, m) for name, m in encoder.named_modules() if isinstance(m, nn.Conv3d)]
    first = next(((n, m) for n, m in convs if m.in_channels == 3), None)
    if first is None:
        raise ConfigError("the encoder has no 3D convolution on RGB input; is it a video encoder?")
    name, conv = first
    w = conv.weight.detach().cpu().float().numpy()  # (N, 3, kt, kh, kw)
    spatial = w.transpose(0, 2, 3, 4, 1)
    temporal_name = temporal = None
    after = convs[convs.index(first) + 1:]
    if conv.kernel_size[0] == 1 and after:
        n2, c2 = after[0]
        if c2.kernel_size[1:] == (1, 1) and c2.kernel_size[0] > 1:
            temporal_name, temporal = n2, c2.weight.detach().cpu().float().numpy()[:, :, :, 0, 0]
    return FirstLayer(name, spatial, temporal_name, temporal)


def _grid(tiles: list[np.ndarray], gap: int = 1, background: float = 1.0) -> np.ndarray:
    """Tiles (h, w, 3) of one size arranged in a grid about as wide as tall, ``gap`` pixels apart."""
    import numpy as np

    h, w = tiles[0].shape[:2]
    cols = min(len(tiles), max(1, round(math.sqrt(len(tiles) * (h + gap) / (w + gap)))))
    rows = math.ceil(len(tiles) / cols)
    out = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), background, dtype=np.float32)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[gap + r * (h + gap):gap + r * (h + gap) + h, gap + c * (w + gap):gap + c * (w + gap) + w] = t
    return out


def spatial_tiles(spatial: np.ndarray) -> list[np.ndarray]:
    """One RGB tile per filter, min-max scaled to [0, 1] on its own; time slices side by side."""
    import numpy as np

    tiles = []
    for f in spatial:  # (kt, kh, kw, 3)
        lo, hi = f.min(), f.max()
        f = (f - lo) / (hi - lo) if hi > lo else np.full_like(f, 0.5)
        tiles.append(np.concatenate(list(f), axis=1))
    return tiles


def temporal_tiles(temporal: np.ndarray) -> list[np.ndarray]:
    """One (input channels x time taps) strip per output channel, in a blue-white-red colour map."""
    import matplotlib
    import numpy as np

    cmap = matplotlib.colormaps["RdBu_r"]
    tiles = []
    for f in temporal:  # (C, kt)
        scale = np.abs(f).max()
        v = 0.5 + 0.5 * (f / scale if scale > 0 else f)
        tiles.append(cmap(v)[..., :3].astype(np.float32))
    return tiles


def render_filters(runs: list[tuple[str, nn.Module]], out, dpi: int = 100) -> dict:
    """Draw the first-layer filters of each (label, video encoder) as one row of a PNG at ``out``;
    returns {"png": path, "rows": [{label, spatial: grid, temporal: grid or None, ...}]}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not runs:
        raise ConfigError("no encoders to draw")
    rows = []
    for label, encoder in runs:
        layer = first_layer(encoder)
        rows.append({"label": label, "layer": layer, "spatial": _grid(spatial_tiles(layer.spatial)),
                     "temporal": None if layer.temporal is None else _grid(temporal_tiles(layer.temporal))})
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 4.4 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1]})
    for (ax_s, ax_t), r in zip(axes, rows):
        layer = r["layer"]
        n, kt, kh, kw, _ = layer.spatial.shape
        ax_s.imshow(r["spatial"], interpolation="nearest")
        ax_s.set_title(f"{r['label']}\n{layer.spatial_name}: {n} spatial filters {kt}x{kh}x{kw}", fontsize=9)
        if r["temporal"] is not None:
            m, c, k = layer.temporal.shape
            ax_t.imshow(r["temporal"], interpolation="nearest")
            ax_t.set_title(f"{layer.temporal_name}: {m} temporal filters\n(rows: {c} inputs, columns: {k} taps; "
                           f"blue - / red +)", fontsize=9)
        else:
            ax_t.text(0.5, 0.5, "no separate temporal layer\n(spatio-temporal stem: time slices left to right)",
                      ha="center", va="center", fontsize=9)
        for ax in (ax_s, ax_t):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    for r in rows:
        del r["layer"]
    return {"png": str(out), "rows": rows}


def filters(encoders: list, out, *, labels: list[str] | None = None, preset: str | None = None,
            seed: int = 0) -> dict:
    """The first-layer filters of the video encoder of every run (or ``encoders.pt``, or ``"scratch"``
    with ``preset``) as one PNG."""
    from ..evaluation.features import load_source

    if labels is not None and len(labels) != len(encoders):
        raise ConfigError(f"{len(labels)} labels for {len(encoders)} encoders")
    runs = []
    for i, enc in enumerate(encoders):
        source = load_source(enc, preset if str(enc) == "scratch" else None, seed)
        _, video = source.encoders.for_modality("video")
        named = str(enc) == "scratch" or not isinstance(enc, (str, Path))  # scratch, or already loaded
        name = labels[i] if labels else (source.name if named else f"{Path(enc).name} ({source.encoders.method})")
        runs.append((name, video))
    return render_filters(runs, out)
