"""Finishing clips batched on the training device: the loading cores hand over the uint8 video crop
and the waveform, and the normalisation and the log-mel are done there, a batch at a time.

On an accelerator this takes the flip, the float conversion and the log-mel (about 3 of 19 ms of CPU
per prepared xdc-paper clip, BENCHMARKS.md section 7) off the cores that decode, and a batch travels
(between processes, pinned, to the device) as a quarter of the bytes. The values are those of the
items finished one by one: the same float32 operations, bit for bit on the CPU.

A dataset can be finished this way when its video chain is crops and flips then one Normalize and
it has no spectrogram augmentation (every preset's evaluation clips; training clips of every preset
but crisscross-paper, whose multi-scale crops, colour and spectrogram augmentations run per clip on
float tensors).

    finish, why_not = BatchFinisher.of(dataset)      # None and a reason when the chains do not allow it
    batch = finish(batch, device)                     # video (B, 3, T, H, W) float32, audio (B, 1, F, P)
"""
from __future__ import annotations

from dataclasses import dataclass

from .dataset import PENDING_FLIP, ClipDataset
from .logmel import LogMelSpectrogram
from .transforms import Normalize
from .transforms.geometry import chain_steps, normalize_only
from .views import window_modality


@dataclass
class BatchFinisher:
    """Mirrors (where ``flip_<window>`` says) and normalises a batch's uint8 ``(B, T, H, W, 3)`` video
    windows and turns its ``(B, n)`` waveform windows into log-mels, on ``device``; other keys pass
    through, the flips are dropped."""

    normalize: Normalize | None
    logmel: LogMelSpectrogram | None

    @classmethod
    def of(cls, dataset: ClipDataset) -> tuple[BatchFinisher | None, str]:
        """The finisher of ``dataset``'s clips, or None and why they cannot be finished batched."""
        modalities = dataset.spec.modalities
        normalize = normalize_only(dataset.video_tf) if "video" in modalities else None
        if "video" in modalities and normalize is None:
            return None, "its video chain has steps after cropping other than one Normalize (colour augmentations)"
        if "audio" in modalities and chain_steps(dataset.spec_tf):
            return None, "it augments the log-mels (spectrogram masks, crops or warps)"
        # Its own log-mel module: the dataset's stays on the CPU, where loader workers unpickle it.
        logmel = LogMelSpectrogram(dataset.logmel.config) if dataset.logmel is not None else None
        return cls(normalize, logmel), ""

    def __call__(self, batch: dict, device) -> dict:
        out = {k: v for k, v in batch.items() if not k.startswith(PENDING_FLIP)}
        for key, value in batch.items():
            modality = window_modality(key)
            if modality == "video" and self.normalize is not None:
                video = value.to(device, non_blocking=True).permute(0, 4, 1, 2, 3)  # (B, 3, T, H, W) view
                out[key] = self.normalize.from_uint8(video, flip=batch[PENDING_FLIP + key])
            elif modality == "audio" and self.logmel is not None:
                out[key] = self.logmel.to(device)(value.to(device, non_blocking=True))  # .to: once, then a no-op
        return out


class FinishedBatches:
    """A DataLoader whose batches come out finished on ``device`` (``len`` and iteration as the loader's)."""

    def __init__(self, loader, finish: BatchFinisher, device):
        self.loader, self.finish, self.device = loader, finish, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield self.finish(batch, self.device)
