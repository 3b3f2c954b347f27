"""Check bf16 autocast against fp32 on the very layers and input shapes a model will run.

Why: some builds of oneDNN compute wrong bf16 results for particular shapes. On a 2-core AMD EPYC with
AVX512-BF16 and no AMX (torch 2.13), the weight gradient of a ``Conv3d`` with a (3, 1, 1) kernel on
2-frame inputs (R(2+1)D's layer-3 temporal convolutions at 8-frame clips) came back as 1.8e26 against
114 in fp32, and training diverged or finished with exploded weights. Where the hardware is right,
bf16 is about 2x faster, so the answer is to check rather than give it up.

``check_layers`` runs every distinct convolution and linear layer (type, weights' shape, stride,
padding, input shape, memory layout) forward and backward in fp32 and under bf16 autocast, on random
inputs and upstream gradients, ``TRIALS`` times, and compares the output, the weight gradient and the
input gradient (the same machine's AMX Xeon got the weight gradient of R(2+1)D's layer-2 spatial
convolutions at 112x112 clips wrong in some calls and right in others). A layer passes when each relative error (norm of the difference over the norm of the fp32
value) is below ``TOLERANCE``; bf16's own rounding gives about 0.003. ``keep_in_fp32`` makes a layer
bf16 gets wrong compute in fp32 under autocast, and ``time_steps`` measures whether the whole encoders,
so contained, train faster in bf16 than in fp32 here. Results are cached per process and on disk per
machine (CPU model or GPU name) and torch version, so a shape is checked once per machine.

Usage: ``uses = check_layers([("video", encoder, torch.zeros(8, 3, 8, 32, 32))], torch.device("cpu"))``
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..machine import device_name
from ..paths import cache_root

log = logging.getLogger("avssl.precision")

TOLERANCE = 0.05
CHECKED_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
MAX_BATCH = 16  # the check runs at most this many items of a batch (the reported defect shows at 16)
# On this project's AMX Xeon, the weight gradient of R(2+1)D's layer-2 spatial convolutions at 112x112
# clips was off by 0.065-0.087 in some calls and non-finite in others, with the same inputs: one call
# can miss it, so each shape is compared this many times and judged by its worst result.
TRIALS = 3
CACHE_FORMAT = "avssl-bf16-check/3"

_memory: dict[str, dict] = {}  # this process's results, by machine key


@dataclass
class LayerCheck:
    """One layer shape: whether bf16 computes it right here, and its relative errors."""

    signature: str
    ok: bool
    errors: dict


@dataclass
class LayerUse:
    """A layer of the model (``name``, dotted from its probe) and the check of its shape."""

    name: str
    module: nn.Module
    check: LayerCheck


def check_layers(probes, device: torch.device, memory_format: str = "contiguous") -> list[LayerUse]:
    """Check every convolution and linear layer of each probe ``(prefix, module, example_input)``.

    ``example_input`` has the shape the module will see (its batch is capped at ``MAX_BATCH``);
    ``memory_format`` is the layout bf16 will run the video path in (fp32, the reference, always runs
    contiguous, as ``precision=fp32`` does)."""
    uses: list[tuple[str, nn.Module, str, tuple]] = []
    for prefix, module, example in probes:
        for name, layer, shape in _layer_inputs(module, example[:MAX_BATCH].to(device)):
            uses.append((f"{prefix}.{name}" if prefix else name, layer, _signature(layer, shape, memory_format), shape))
    key = _machine_key(device)
    known = _memory.setdefault(key, _read_cache().get(key, {}))
    fresh = False
    for _, layer, sig, shape in uses:
        if sig not in known:
            known[sig] = asdict(_compare(layer, shape, device, memory_format, sig))
            fresh = True
    if fresh:
        _write_cache(key, known)
    return [LayerUse(name, layer, LayerCheck(**known[sig])) for name, layer, sig, _ in uses]


def _layer_inputs(module: nn.Module, example: torch.Tensor) -> list[tuple[str, nn.Module, tuple]]:
    """(name, layer, input shape) of every checked layer that runs on ``example``, in call order."""
    seen: list[tuple[str, nn.Module, tuple]] = []
    names = {m: n for n, m in module.named_modules()}
    hooks = [m.register_forward_pre_hook(lambda m, args: seen.append((names[m], m, tuple(args[0].shape))))
             for m in module.modules() if isinstance(m, CHECKED_TYPES)]
    was_training = module.training
    try:
        with torch.no_grad():
            module.eval()(example)
    finally:
        module.train(was_training)
        for h in hooks:
            h.remove()
    return seen


def _signature(layer: nn.Module, shape: tuple, memory_format: str) -> str:
    if isinstance(layer, nn.Linear):
        desc = f"Linear({layer.in_features}, {layer.out_features}, bias={layer.bias is not None})"
    else:
        desc = (f"{type(layer).__name__}({layer.in_channels}, {layer.out_channels}, kernel={layer.kernel_size}, "
                f"stride={layer.stride}, padding={layer.padding}, dilation={layer.dilation}, "
                f"groups={layer.groups}, bias={layer.bias is not None})")
    layout = memory_format if isinstance(layer, nn.Conv3d) else "contiguous"
    return f"{desc} on {tuple(shape)} {layout}"


def _compare(layer: nn.Module, shape: tuple, device, memory_format: str, signature: str) -> LayerCheck:
    """Forward and backward of a copy of ``layer`` in fp32 (contiguous) and under bf16 autocast."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(device)
    ref_layer = copy.deepcopy(layer).float().to(device).train()
    low_layer = copy.deepcopy(ref_layer)
    channels_last = memory_format == "channels_last_3d" and isinstance(layer, nn.Conv3d)
    if channels_last:
        low_layer.to(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        grad_out = torch.randn(ref_layer(x).shape, generator=gen).to(device)

    def step(m: nn.Module, bf16: bool):
        m.zero_grad(set_to_none=True)
        layout = torch.channels_last_3d if channels_last and bf16 else torch.contiguous_format
        xi = x.detach().clone(memory_format=layout).requires_grad_(True)
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            y = m(xi)
        y.float().backward(grad_out)
        return y.detach().float(), m.weight.grad.detach().clone(), xi.grad.detach().clone()

    errors = {"output": 0.0, "weight_grad": 0.0, "input_grad": 0.0}
    for _ in range(TRIALS):  # the worst of several: some wrong results come and go between calls
        ref, low = step(ref_layer, False), step(low_layer, True)
        for part, a, b in zip(errors, low, ref):
            errors[part] = max(errors[part], _relative_error(a, b))
    ok = all(e < TOLERANCE for e in errors.values())
    if not ok:
        log.warning("bf16 is wrong here for %s: relative errors %s", signature,
                    ", ".join(f"{k} {v:.3g}" for k, v in errors.items()))
    return LayerCheck(signature, ok, errors)


def time_steps(probes, device: torch.device, memory_format: str, fp32_layers=(), repeats: int = 2) -> dict:
    """Milliseconds of one training pass (forward and backward) of every probe's module on its
    example batch: ``{"fp32": ms, "bf16": ms}``, fp32 contiguous against bf16 autocast in
    ``memory_format`` with the ``fp32_layers`` (dotted names, as ``check_layers`` gives) contained.
    The best of ``repeats`` interleaved passes after a warm-up; cached like the checks."""
    key = _machine_key(device)
    what = [(prefix, tuple(example[:MAX_BATCH].shape), _signatures(module)) for prefix, module, example in probes]
    sig = "step " + hashlib.sha1(json.dumps([what, memory_format, sorted(fp32_layers)]).encode()).hexdigest()
    known = _memory.setdefault(key, _read_cache().get(key, {}))
    if sig not in known:
        ms = {"fp32": 0.0, "bf16": 0.0}
        for prefix, module, example in probes:
            x = torch.randn(example[:MAX_BATCH].shape, generator=torch.Generator().manual_seed(0)).to(device)
            passes = {p: _training_pass(module, prefix, x, device, p == "bf16", memory_format, fp32_layers) for p in ms}
            best = {p: float("inf") for p in ms}
            for i in range(repeats + 1):  # interleaved, so a load that comes and goes hits both alike
                for p, run in passes.items():
                    t = run()
                    if i:  # the first pass warms up (oneDNN builds its kernels)
                        best[p] = min(best[p], t)
            for p in ms:
                ms[p] += best[p]
        known[sig] = ms
        _write_cache(key, {sig: ms})
    return dict(known[sig])


def _training_pass(module: nn.Module, prefix: str, x: torch.Tensor, device, bf16: bool, memory_format: str,
                   fp32_layers):
    """A function timing one forward and backward pass (ms) of a copy of ``module`` in one precision."""
    m = copy.deepcopy(module).float().to(device).train()
    if bf16:
        for name, layer in m.named_modules():
            if (f"{prefix}.{name}" if prefix else name) in fp32_layers:
                keep_in_fp32(layer)
        if memory_format == "channels_last_3d" and x.dim() == 5:
            for layer in m.modules():
                if isinstance(layer, nn.Conv3d):
                    layer.to(memory_format=torch.channels_last_3d)
            x = x.contiguous(memory_format=torch.channels_last_3d)

    def run() -> float:
        m.zero_grad(set_to_none=True)
        _sync(device)
        t0 = time.perf_counter()
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            y = m(x)
        y.float().square().mean().backward()
        _sync(device)
        return (time.perf_counter() - t0) * 1000

    return run


def _signatures(module: nn.Module) -> list[str]:
    return [f"{n}:{type(m).__name__}:{tuple(p.shape)}" for n, m in module.named_modules()
            for p in m.parameters(recurse=False)]


_FP32_CLASSES: dict[type, type] = {}


def keep_in_fp32(module: nn.Module) -> nn.Module:
    """Make ``module`` compute in fp32 even under autocast (its class becomes a subclass whose forward
    leaves autocast; weights, state dict and layout are unchanged). Idempotent."""
    cls = type(module)
    if getattr(cls, "_avssl_fp32", False):
        return module
    if cls not in _FP32_CLASSES:
        def forward(self, x, *args, **kwargs):
            with torch.autocast(x.device.type, enabled=False):
                return super(sub, self).forward(x.float(), *args, **kwargs)

        sub = type(f"Fp32{cls.__name__}", (cls,), {"forward": forward, "_avssl_fp32": True,
                                                      "__module__": cls.__module__})
        _FP32_CLASSES[cls] = sub
    module.__class__ = _FP32_CLASSES[cls]
    return module


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    if not torch.isfinite(a).all():
        return float("inf")
    diff = float((a.double() - b.double()).norm())
    scale = float(b.double().norm())
    return diff / scale if scale > 0 else diff


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _machine_key(device) -> str:
    return f"{device_name(device)} | torch {torch.__version__}"


def _cache_path():
    return cache_root() / "bf16-checks.json"


def _read_cache() -> dict:
    try:
        data = json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data.get("machines", {}) if isinstance(data, dict) and data.get("format") == CACHE_FORMAT else {}


def _write_cache(key: str, results: dict) -> None:
    from ..io import atomic_write_text

    machines = _read_cache()
    machines[key] = {**machines.get(key, {}), **results}
    try:
        atomic_write_text(_cache_path(), json.dumps({"format": CACHE_FORMAT, "machines": machines}, indent=1))
    except OSError as e:  # a read-only cache costs a re-check next time, nothing else
        log.debug("could not write the bf16 check cache: %s", e)


def forget_cached_results() -> None:
    """Drop this process's results (the disk cache stays): the next check measures again."""
    _memory.clear()
