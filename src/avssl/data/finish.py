"""Finishing clips on the training device: the loading cores hand over what the uint8 stage of the video
chain made (crops, a multi-scale crop's resize) and the waveform, and the rest is done where the
batch goes: the flip, the float conversion, colour augmentations and normalisation, the log-mel and
its augmentations.

On an accelerator this takes that work (about 3 of 19 ms of CPU per prepared xdc-paper clip, 5-6 of
15 ms for crisscross-paper's; BENCHMARKS.md section 7) off the cores that decode, and a
batch travels (between processes, pinned, to the device) as a quarter of the bytes. The values are
those of items finished one by one, bit for bit on the CPU: random augmentations of the float stage
draw from a generator seeded per window in the item (``dataset.stage_seed``), wherever they run. A
chain that is only a Normalize after its crops is done as one batched operation; other float stages
run clip by clip on the device.

Any chain whose uint8 stage crops to a fixed size can be finished this way (every chain
``pipeline.make_dataset`` builds); one that does not (a custom chain without a crop) is finished in
the items.

    finish, why_not = BatchFinisher.of(dataset)      # None and a reason when the chain does not allow it
    batch = finish(batch, device)                     # video (B, 3, T, H, W) float32, audio (B, 1, F, P)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .dataset import PENDING_FLIP, PENDING_SEED, ClipDataset, seeded
from .logmel import LogMelSpectrogram
from .transforms import Normalize
from .transforms.geometry import chain_steps, float_stage, sized_by_uint8_stage, split_chain
from .views import window_modality


@dataclass
class BatchFinisher:
    """Finishes a batch's unfinished windows on ``device``: uint8 ``(B, T, h, w, 3)`` video windows
    through ``video_steps`` (the video chain after its uint8 stage, with each window's flip and seed),
    ``(B, n)`` waveform windows into log-mels, then through ``spec_tf``; other keys pass through, the
    pending flips and seeds are dropped."""

    video_steps: list
    logmel: LogMelSpectrogram | None
    spec_tf: Callable | None  # None: no spectrogram augmentation

    @classmethod
    def of(cls, dataset: ClipDataset) -> tuple[BatchFinisher | None, str]:
        """The finisher of ``dataset``'s clips, or None and why they cannot be finished batched."""
        if "video" in dataset.spec.modalities and not sized_by_uint8_stage(dataset.video_tf):
            return None, "its video chain does not crop the uint8 clip to a fixed size, so clips would not stack"
        # Its own log-mel module: the dataset's stays on the CPU, where loader workers unpickle it.
        logmel = LogMelSpectrogram(dataset.logmel.config) if dataset.logmel is not None else None
        return cls(split_chain(dataset.video_tf)[1], logmel, dataset.spec_tf if chain_steps(dataset.spec_tf) else None), ""

    def __call__(self, batch: dict, device) -> dict:
        out = {k: v for k, v in batch.items() if not k.startswith((PENDING_FLIP, PENDING_SEED))}
        for key, value in batch.items():
            modality = window_modality(key)
            if modality == "video":
                video = value.to(device, non_blocking=True).permute(0, 4, 1, 2, 3)  # (B, 3, T, h, w) view
                out[key] = self._video(video, batch[PENDING_FLIP + key], batch[PENDING_SEED + key])
            elif modality == "audio" and self.logmel is not None:
                spec = self.logmel.to(device)(value.to(device, non_blocking=True))  # .to: once, then a no-op
                if self.spec_tf is not None:
                    spec = torch.stack([self.spec_tf(s, seeded(int(seed))) for s, seed in zip(spec, batch[PENDING_SEED + key])])
                out[key] = spec
        return out

    def _video(self, video, flips, seeds):
        if len(self.video_steps) == 1 and isinstance(self.video_steps[0], Normalize):  # one batched pass
            return float_stage(video, flips, self.video_steps, None)
        return torch.stack([float_stage(clip, bool(flip), self.video_steps, seeded(int(seed)))
                            for clip, flip, seed in zip(video, flips, seeds)])


class FinishedBatches:
    """A DataLoader whose batches come out finished on ``device`` (``len`` and iteration as the loader's)."""

    def __init__(self, loader, finish: BatchFinisher, device):
        self.loader, self.finish, self.device = loader, finish, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield self.finish(batch, self.device)
