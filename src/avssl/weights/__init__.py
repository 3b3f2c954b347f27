"""Pretrained weights from outside a run: the official XDC release, torchvision's layout, exports.

The XDC authors released R(2+1)D-18 video encoders (github.com/HumamAlwassel/XDC, ``xdc.py``) as
PyTorch state dicts named ``r2plus1d_18_<pretraining>-<first 8 hex digits of the file's SHA-256>.pth``:

=========================  ==========  =================================================
pretraining                hash        what
=========================  ==========  =================================================
``xdc_ig65m_kinetics``     f24f6ffb    XDC pretrained on IG-Kinetics (the paper's best)
``xdc_ig65m_random``       189d23f4    XDC pretrained on IG-Random
``xdc_audioset``           f29ffe8f    XDC pretrained on AudioSet
``fs_kinetics``            622bdad9    fully supervised on Kinetics (baseline)
``fs_imagenet``            ff446670    fully supervised on ImageNet (baseline)
=========================  ==========  =================================================

They are video encoders only (no audio encoder was released), hold the backbone without a
classifier (the release's loader builds a fresh ``fc`` and loads with ``strict=False``), and use
torchvision's module names with the Caffe2 per-convolution mid-planes (``midplanes="xdc"`` of
:func:`avssl.models.create_r2plus1d_18`). The Caffe2 ``.pkl`` files of the same release are plain
Python pickles and are refused.

Loading here is stricter than the release's own loader: the hash prefix in the name must match the
file's SHA-256, the file is read with ``torch.load(weights_only=True)`` (never executing pickled
code), and every tensor must match the architecture by name and shape (only a classifier ``fc`` is
optional, and BatchNorm's ``num_batches_tracked`` counters, which files converted from Caffe2 may lack;
they never affect the output).

Layouts and what converts (:func:`convert_state_dict`):

* avssl <-> torchvision: key-identical (same module names); an avssl R(2+1)D built with
  ``midplanes="torchvision"`` (the default) has torchvision's shapes too, so its state dict loads
  into ``torchvision.models.video.r2plus1d_18`` as is (add ``fc`` or set ``model.fc = Identity()``).
* XDC release <-> torchvision: the same keys, and the same shapes everywhere except the second
  convolution of the first block of stages 2-4, whose (2+1)D factorisation has more mid-planes in
  the release (288/576/1152 instead of 230/460/921). torchvision -> release is exact: the extra
  mid-channels are added as inert zeros, and the network computes the same function.
  Release -> torchvision is NOT possible without changing the network (the mid-channels feed a
  BatchNorm and a ReLU, so no 230-channel factorisation reproduces a trained 288-channel one); it
  is only done when the channels to drop are inert (e.g. a release-layout copy of a torchvision
  model), and refused otherwise.
"""
from ..errors import LayoutError
from .release import RELEASE_FILES, RELEASE_URL, ReleaseInfo, load_xdc_release, parse_release_name, release_architecture, sha256_of, verify_hash_in_name, verify_release_file
from .files import load_state_dict_file, strict_load
from .layouts import LAYOUTS, convert_state_dict, detect_midplanes
from .architecture import build_for, infer_architecture, load_weights
from .exchange import export_torchvision, import_weights

__all__ = [
    "LAYOUTS", "LayoutError", "RELEASE_FILES", "RELEASE_URL", "ReleaseInfo", "build_for", "convert_state_dict",
    "detect_midplanes", "export_torchvision", "import_weights", "infer_architecture", "load_state_dict_file",
    "load_weights", "load_xdc_release", "parse_release_name", "release_architecture", "sha256_of", "strict_load",
    "verify_hash_in_name", "verify_release_file",
]
