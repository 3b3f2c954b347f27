"""What machine this is, in the words a figure or a cache key needs: the CPU model and the device.

Usage: ``machine.cpu_model()`` -> ``"Intel(R) Xeon(R) Processor"``
"""
from __future__ import annotations

import platform


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's description where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_name(device) -> str:
    """``cpu: <model>`` or ``cuda: <GPU name>``: what computes on ``device``."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_model()}"
