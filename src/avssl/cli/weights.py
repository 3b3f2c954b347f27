"""``avssl weights {info,import,export,convert}``: official XDC weights and plain state dicts.

Kept free of heavy imports at module level, so ``avssl --help`` stays fast.
"""
from __future__ import annotations

import json


def register(subparsers) -> None:
    w = subparsers.add_parser("weights", help="official XDC weights: verify, import for evaluation, export, convert",
                              description="Work with weight files outside a run: the XDC authors' release "
                                          "(r2plus1d_18_<pretraining>-<sha256>.pth), torchvision-layout state dicts "
                                          "and avssl encoders. Everything is loaded weights-only, never unpickling "
                                          "arbitrary objects.")
    sub = w.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    p = sub.add_parser("info", help="verify a weights file (name, SHA-256 prefix, layout) and describe it")
    p.add_argument("file", help="release file (r2plus1d_18_<pretraining>-<sha256>.pth) or state dict")
    p.add_argument("--no-check-hash", action="store_true", help="skip the SHA-256 check of a release file")
    p.set_defaults(func=_run_info)

    p = sub.add_parser("import", help="a release file or state dict -> <out>/encoders.pt for 'avssl eval --encoders'")
    p.add_argument("file", help="release file or torchvision-layout state dict (.pth)")
    p.add_argument("--out", required=True, help="folder for encoders.pt")
    p.add_argument("--modality", choices=["video", "audio"], help="which encoder the file holds (default: read from it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="clip settings evaluation will use, e.g. --set video.crop=112 (repeatable)")
    p.add_argument("--no-check-hash", action="store_true", help="skip the SHA-256 check of a release file")
    p.set_defaults(func=_run_import)

    p = sub.add_parser("export", help="an avssl run's encoder -> plain torchvision-layout state dict (.pth)")
    p.add_argument("run", help="run directory or encoders.pt")
    p.add_argument("--out", required=True, help="output .pth")
    p.add_argument("--modality", choices=["video", "audio"], default="video", help="which encoder to export")
    p.add_argument("--hash-name", action="store_true",
                   help="append the SHA-256 prefix to the file name (name-1a2b3c4d.pth), as torch.hub expects")
    p.set_defaults(func=_run_export)

    p = sub.add_parser("convert", help="convert a video state dict between torchvision and XDC-release layouts")
    p.add_argument("file", help="state dict file (.pth)")
    p.add_argument("--from", dest="src", choices=["torchvision", "xdc-release", "avssl"], required=True,
                   help="layout of FILE")
    p.add_argument("--to", dest="dst", choices=["torchvision", "xdc-release", "avssl"], required=True,
                   help="layout to write")
    p.add_argument("--out", required=True, help="output .pth")
    p.set_defaults(func=_run_convert)


def _describe(model) -> dict:
    from ..weights import infer_architecture

    sd = model.state_dict()
    arch = infer_architecture(sd)
    return {**arch, "parameters": sum(p.numel() for p in model.parameters())}


def _run_info(a) -> int:
    from ..weights import load_weights

    model = load_weights(a.file, check_hash=not a.no_check_hash)
    out = {"file": a.file, **_describe(model)}
    info = getattr(model, "release_info", None)
    if info is not None:
        out.update({"release": info.pretraining, "description": info.description,
                    "sha256": info.sha256 or "not checked", "official_file": info.official})
        if not info.official:
            out["note"] = f"named like the release, but not the official file ({info.url})"
    else:
        out["note"] = "a plain state dict (not an XDC release file)"
    print(json.dumps(out, indent=2))
    return 0


def _run_import(a) -> int:
    from ..runs import load_encoders
    from ..weights import import_weights

    path = import_weights(a.file, a.out, modality=a.modality, overrides=a.overrides,
                          check_hash=not a.no_check_hash)
    enc = load_encoders(path)
    print(f"encoders written to {path} ({enc.method}; slots {enc.slots}); evaluate with e.g.\n"
          f"  avssl eval linear --encoders {a.out} --data MANIFEST.csv --out EVAL_DIR "
          f"--modality {next(iter(enc.slots.values()))}")
    return 0


def _run_export(a) -> int:
    from ..runs import load_encoders
    from ..weights import export_torchvision, infer_architecture

    enc = load_encoders(a.run)
    path = export_torchvision(enc, a.out, modality=a.modality, hash_name=a.hash_name)
    arch = infer_architecture(enc.for_modality(a.modality)[1].state_dict())
    print(f"wrote {path}: plain state dict of the {a.modality} encoder ({json.dumps(arch)}); load with "
          f"torch.load(path, weights_only=True), or torch.hub.load(AVSSL_CLONE, '{arch['encoder']}', source='local', "
          f"pretrained_path=path)")
    return 0


def _run_convert(a) -> int:
    from ..io import atomic_save
    from ..weights import convert_state_dict, load_state_dict_file

    sd = convert_state_dict(load_state_dict_file(a.file), a.src, a.dst)
    atomic_save(sd, a.out)
    print(f"wrote {a.out} ({a.src} -> {a.dst}, {len(sd)} tensors)")
    return 0
