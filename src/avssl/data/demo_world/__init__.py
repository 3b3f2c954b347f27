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

Layout: :mod:`.spec` (the config and the classes), :mod:`.video` and :mod:`.audio` (rendering a clip's two
modalities), :mod:`.generate` (nuisances, writing the clips and the manifest, the cached copy).

Usage: ``manifest = demo_dataset(config=DemoWorldConfig(num_classes=4))``
"""
from .generate import COMPLETE_MARKER, GENERATOR_VERSION, config_hash, demo_dataset, generate_demo_world
from .spec import CLASS_NAMES, DemoWorldConfig

__all__ = ["CLASS_NAMES", "COMPLETE_MARKER", "DemoWorldConfig", "GENERATOR_VERSION", "config_hash", "demo_dataset",
           "generate_demo_world"]
