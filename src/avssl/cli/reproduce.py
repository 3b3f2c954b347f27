"""``avssl reproduce``: one command per paper table (the registry is ``avssl.workflows.paper_tables``).

    avssl reproduce --list
    avssl reproduce xdc-table1 --data-root /data --out repro/xdc-table1 --dry-run
    avssl reproduce xdc-table1 --data-root /data --out repro/xdc-table1

A table becomes a plan of ordinary avssl commands: build each dataset's manifest from its official
layout below ``--data-root`` (``avssl data ...``), pretrain every run (``avssl pretrain``), evaluate
every cell (``avssl eval ...``). ``--dry-run`` prints the plan and a step estimate; otherwise the
steps run in order, each skipped when its output exists (a manifest, a run's ``encoders.pt``, an
evaluation's JSON) and an interrupted pretraining resumed, so rerunning the command continues where
it stopped and never retrains. At the end ``<out>/table.md`` and ``table.json`` put every cell beside
the paper's number, with the difference: avssl's value (hyper-parameters chosen on validation) and,
where the evaluation reports it, the best over its grid on test (the papers' way).

``--preset`` and ``--set`` replace the papers' recipes (for a smoke test on tiny data or a smaller
budget); the table then says that its numbers are not comparable with the paper's.
"""
from __future__ import annotations

import functools
import json
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class Step:
    """One avssl command of a plan and the file that shows it finished."""

    kind: str  # data | pretrain | retrain-long | eval
    argv: tuple
    done: Path

    def command(self) -> str:
        return "avssl " + shlex.join(self.argv)


def table(name: str):
    from ..config import did_you_mean
    from ..workflows.paper_tables import TABLES

    if name not in TABLES:
        raise ConfigError(f"unknown table {name!r}{did_you_mean(str(name), TABLES)} (tables: {', '.join(TABLES)}; "
                          f"avssl reproduce --list)")
    return TABLES[name]


def selected_cells(t, rows=None) -> tuple:
    """The table's cells, only those of ``rows`` (row labels) when given."""
    if not rows:
        return t.cells
    known = list(dict.fromkeys(c.row for c in t.cells))
    unknown = [r for r in rows if r not in known]
    if unknown:
        raise ConfigError(f"{t.name} has no row(s) {unknown}; its rows: {'; '.join(known)}")
    return tuple(c for c in t.cells if c.row in rows)


def _run_dir(out: Path, name: str) -> Path:
    return out / "runs" / name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+=-]+", "-", text).strip("-").lower()


def eval_dir(out: Path, cell) -> Path:
    return out / "evals" / _slug(cell.row) / _slug(cell.column)


def plan(t, data_root, out, *, preset: str | None = None, sets=(), eval_options=(), rows=None,
         device: str | None = None) -> list[Step]:
    """The commands that rebuild table ``t`` (a ``PaperTable``) into ``out``, in order."""
    from ..workflows.paper_tables import DATASETS

    out, root = Path(out).absolute(), Path(data_root).absolute()
    cells = selected_cells(t, rows)
    runs = {r.name: r for r in t.runs}
    long_runs = {f"{r.name}-32f": r for r in t.runs if r.long_clips}
    used_runs = [r for r in t.runs if any(c.run in (r.name, f"{r.name}-32f") for c in cells)]
    datasets = list(dict.fromkeys([r.dataset for r in used_runs] + [c.dataset for c in cells]))
    manifest = {d: out / "data" / f"{d}.csv" for d in datasets}
    steps = []
    for d in datasets:
        fields = {"root": str(root), "manifest": str(manifest[d]), "work": str(out / "data")}
        steps.append(Step("data", tuple(a.format(**fields) for a in DATASETS[d].command), manifest[d]))
    user_sets = tuple(a for s in sets for a in ("--set", s))
    dev = ("--device", device) if device else ()
    for r in used_runs:
        run_dir = _run_dir(out, r.name)
        argv = ("pretrain", "--method", r.method, "--preset", preset or r.preset, "--data", str(manifest[r.dataset]),
                "--out", str(run_dir), *(a for s in r.sets for a in ("--set", s)), *user_sets,
                *(("--set", f"device={device}") if device else ()), "--resume", "--no-progress")
        steps.append(Step("pretrain", argv, run_dir / "encoders.pt"))
        if r.long_clips and any(c.run == f"{r.name}-32f" for c in cells):
            long_dir = _run_dir(out, f"{r.name}-32f")
            steps.append(Step("retrain-long", ("retrain-long", "--run", str(run_dir), "--out", str(long_dir), "--data",
                                               str(manifest[r.dataset]), *user_sets, "--no-progress"),
                              long_dir / "encoders.pt"))
    for c in cells:
        if c.run is not None and c.run not in runs and c.run not in long_runs:
            raise ConfigError(f"{t.name}: cell {c.row} / {c.column} names run {c.run!r}, which the table lacks")
        accepts = _eval_options(c.kind)
        encoders = ("--encoders", str(_run_dir(out, c.run))) if c.run else \
            ("--encoders", "scratch", "--preset", preset or c.preset, *user_sets)
        argv = ["eval", c.kind, *encoders, "--data", str(manifest[c.dataset]), "--out", str(eval_dir(out, c))]
        if "--modality" in accepts:
            argv += ["--modality", c.modality]
        argv += list(c.options)
        for option in eval_options:
            key, _, value = option.partition("=")
            flag = "--" + key.lstrip("-")
            if flag in accepts:  # an option the evaluation lacks (e.g. --epochs of an SVM) does not apply to it
                argv += [flag, value] if value else [flag]
        argv += [*(a for a in dev if "--device" in accepts), "--no-progress"]
        steps.append(Step("eval", tuple(argv), eval_dir(out, c) / f"{c.kind}.json"))
    return steps


@functools.lru_cache(maxsize=None)
def _eval_options(kind: str) -> frozenset:
    """The option strings ``avssl eval KIND`` accepts."""
    from . import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    evals = next(a for a in commands["eval"]._actions if a.dest == "eval_command").choices
    if kind not in evals:
        raise ConfigError(f"unknown evaluation {kind!r} (avssl eval: {', '.join(evals)})")
    return frozenset(evals[kind]._option_string_actions)


def check_eval_options(eval_options) -> None:
    for option in eval_options:
        key = option.partition("=")[0].lstrip("-")
        if not key or " " in key:
            raise ConfigError(f"--eval-option must look like NAME=VALUE (e.g. epochs=1), got {option!r}")


# --- estimate ------------------------------------------------------------------------------------

def pretrain_steps(cfg, videos: int | None) -> int | None:
    """SGD steps of a pretraining at most (early stopping may end it sooner); None when the epoch size
    is one pass over data of unknown size."""
    o = cfg.optim
    per_epoch = o.epoch_size or videos
    if per_epoch is None:
        return None
    if cfg.method == "avts":
        epochs = sum(cfg.avts.stage_epochs or [o.max_epochs, o.max_epochs])
    elif cfg.method == "crisscross":
        epochs = o.max_epochs
    elif o.last_iteration_epochs:
        epochs = (cfg.iterations - 1) * o.max_epochs + o.last_iteration_epochs[2]
    else:
        epochs = cfg.iterations * o.max_epochs
    return epochs * math.ceil(per_epoch / o.batch_size)


def estimate(t, *, preset: str | None = None, sets=(), rows=None, step_seconds: float | None = None) -> list[str]:
    """Lines: each pretraining's steps at most, and GPU-hours at ``step_seconds`` per step when given."""
    from ..config import resolve
    from ..workflows.paper_tables import DATASETS

    cells = selected_cells(t, rows)
    lines, total, unknown = [], 0, False
    for r in t.runs:
        if not any(c.run in (r.name, f"{r.name}-32f") for c in cells):
            continue
        cfg = resolve(preset or r.preset, r.method, [*r.sets, *sets])
        steps = pretrain_steps(cfg, DATASETS[r.dataset].videos)
        unknown |= steps is None
        total += steps or 0
        size = f"{cfg.optim.epoch_size:,} clips" if cfg.optim.epoch_size else "one pass"
        lines.append(f"  {r.name}: {'?' if steps is None else f'<= {steps:,}'} steps of batch {cfg.optim.batch_size} "
                     f"({size} per epoch){' + retrain-long' if r.long_clips else ''}")
    hours = (f"{total * step_seconds / 3600:,.1f} GPU-hours at {step_seconds:g} s per step"
             if step_seconds else "GPU-hours: give --step-seconds (a step's time measured on your GPU)")
    lines.append(f"  pretraining total: <= {total:,} steps{' (+ unknown)' if unknown else ''}; {hours}; "
                 f"evaluations not counted")
    return lines


# --- run and compare -----------------------------------------------------------------------------

def run_plan(steps, echo=print) -> dict:
    """Run every step whose output is missing; returns counts of steps run and reused."""
    from . import main

    counts = {"run": 0, "reused": 0}
    for i, step in enumerate(steps, 1):
        if step.done.exists():
            echo(f"[{i}/{len(steps)}] reused: {step.command()}")
            counts["reused"] += 1
            continue
        echo(f"[{i}/{len(steps)}] {step.command()}")
        rc = main(list(step.argv))
        if rc != 0:
            raise ConfigError(f"step {i} failed (exit {rc}): {step.command()}\nfix it and rerun avssl reproduce: "
                              f"finished steps are reused")
        if not step.done.exists():
            raise ConfigError(f"step {i} finished without writing {step.done}: {step.command()}")
        counts["run"] += 1
    return counts


def read_cell(path: Path, metric: str) -> tuple[float | None, float | None]:
    """(avssl's value, best over the grid on test) of an evaluation JSON, as fractions; None when absent."""
    if not path.exists():
        return None, None
    result = json.loads(path.read_text())
    mean = result.get("mean", {})
    value = mean.get(metric, result.get(metric))
    return value, mean.get(f"{metric}_best_over_grid")


def compare(t, out, *, rows=None, recipe_note: str | None = None) -> dict:
    """Write ``<out>/table.json`` and ``table.md``: every cell beside the paper's number."""
    from ..io import atomic_write_text

    out = Path(out)
    entries = []
    for c in selected_cells(t, rows):
        value, best = read_cell(eval_dir(out, c) / f"{c.kind}.json", c.metric)
        pct = None if value is None else round(100 * value, 2)
        best_pct = None if best is None else round(100 * best, 2)
        entries.append({"row": c.row, "column": c.column, "published": c.published, "avssl": pct,
                        "difference": None if pct is None else round(pct - c.published, 2),
                        "best_over_grid": best_pct,
                        "best_over_grid_difference": None if best_pct is None else round(best_pct - c.published, 2),
                        "evaluation": f"avssl eval {c.kind}", "result": str(eval_dir(out, c) / f"{c.kind}.json")})
    result = {"table": t.name, "source": t.source, "title": t.title, "recipes": recipe_note or "the papers'",
              "cells": entries, "notes": t.notes}

    def num(v):
        return "-" if v is None else f"{v:.1f}"

    def diff(v):
        return "-" if v is None else f"{v:+.1f}"

    lines = [f"# {t.source}: {t.title}", "",
             f"Published numbers: {t.source} (/work/shared/papers). avssl: hyper-parameters chosen on a validation "
             f"split of the training videos; best over grid: the best test accuracy over the same grid (how the "
             f"papers report). Differences are avssl minus paper, in points.", ""]
    if recipe_note:
        lines += [f"**Not the papers' recipes** ({recipe_note}): the numbers are not comparable with the paper's.", ""]
    lines += ["| row | column | paper | avssl | difference | best over grid | difference |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {e['row']} | {e['column']} | {num(e['published'])} | {num(e['avssl'])} | {diff(e['difference'])} | "
              f"{num(e['best_over_grid'])} | {diff(e['best_over_grid_difference'])} |" for e in entries]
    if t.notes:
        lines += ["", f"Notes: {t.notes}"]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "table.md", "\n".join(lines) + "\n")
    return result


def listing() -> str:
    """Every table: what it needs and its published numbers."""
    from ..workflows.paper_tables import DATASETS, TABLES

    lines = []
    for t in TABLES.values():
        lines += [f"{t.name}  ({t.source}) {t.title}",
                  "  needs: " + "; ".join(f"{d} = {DATASETS[d].layout}" for d in t.datasets),
                  "  presets: " + ", ".join(dict.fromkeys(r.preset for r in t.runs)) + f"; paper's compute: {t.compute}",
                  f"  runs: {len(t.runs)} pretrainings, {len(t.cells)} evaluations"]
        by_row: dict = {}
        for c in t.cells:
            by_row.setdefault(c.row, []).append(f"{c.column} {c.published:g}")
        lines += [f"    {row}: {', '.join(values)}" for row, values in by_row.items()]
        if t.notes:
            lines.append(f"  notes: {t.notes}")
        lines.append("")
    lines.append("Run one: avssl reproduce TABLE --data-root DIR --out DIR [--dry-run]; dataset folders below "
                 "--data-root as listed under 'needs'.")
    return "\n".join(lines)


# --- the command ---------------------------------------------------------------------------------

def register(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="rebuild a paper table: datasets, pretrainings, evaluations, and "
                                                "the table beside the published numbers",
                              description=__doc__.split("\n\n")[2] if __doc__ else None)
    p.add_argument("table", nargs="?", metavar="TABLE", help="table name (avssl reproduce --list)")
    p.add_argument("--list", action="store_true", help="every table with what it needs and its published numbers")
    p.add_argument("--data-root", metavar="DIR", help="folder holding the datasets in their official layouts")
    p.add_argument("--out", metavar="DIR", help="where manifests, runs, evaluations and the table go")
    p.add_argument("--dry-run", action="store_true", help="print the commands and the step estimate, run nothing")
    p.add_argument("--rows", metavar="ROW", action="append", default=[],
                   help="only this row of the table (repeatable; the row labels of --list)")
    p.add_argument("--preset", help="replace every run's preset (e.g. cpu-tiny for a smoke test): numbers no longer "
                                    "comparable with the paper's")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config value for every pretraining (and scratch encoders); not the paper's recipe")
    p.add_argument("--eval-option", action="append", default=[], metavar="NAME=VALUE",
                   help="option for every evaluation that has it, e.g. epochs=1 or test-clips=1 (repeatable)")
    p.add_argument("--step-seconds", type=float, metavar="S", help="seconds per pretraining step on your GPU, "
                                                                    "for the GPU-hours estimate")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... for every step (default: auto)")
    p.set_defaults(func=_run)


def _run(a) -> int:
    if a.list:
        print(listing())
        return 0
    if not a.table:
        raise ConfigError("avssl reproduce needs a TABLE (or --list to see them)")
    t = table(a.table)
    if not a.data_root or not a.out:
        raise ConfigError("avssl reproduce TABLE needs --data-root DIR and --out DIR")
    if not Path(a.data_root).is_dir():
        raise ConfigError(f"--data-root {a.data_root} does not exist or is not a folder")
    if a.step_seconds is not None and a.step_seconds <= 0:
        raise ConfigError(f"--step-seconds must be > 0, got {a.step_seconds}")
    check_eval_options(a.eval_option)
    steps = plan(t, a.data_root, a.out, preset=a.preset, sets=a.overrides, eval_options=a.eval_option, rows=a.rows,
                 device=a.device)
    note = ", ".join([*([f"preset {a.preset}"] if a.preset else []), *a.overrides,
                      *(f"eval {o}" for o in a.eval_option)]) or None
    print(f"{t.source}: {t.title}")
    print(f"{len(steps)} steps ({sum(s.kind == 'pretrain' for s in steps)} pretrainings, "
          f"{sum(s.kind == 'eval' for s in steps)} evaluations); estimate:")
    print("\n".join(estimate(t, preset=a.preset, sets=a.overrides, rows=a.rows, step_seconds=a.step_seconds)))
    if a.dry_run:
        for i, step in enumerate(steps, 1):
            state = "done" if step.done.exists() else "to run"
            print(f"[{i}] ({state}) {step.command()}")
        return 0
    counts = run_plan(steps)
    result = compare(t, a.out, rows=a.rows, recipe_note=note)
    print(f"{counts['run']} steps run, {counts['reused']} reused")
    print(Path(a.out, "table.md").read_text())
    missing = sum(e["avssl"] is None for e in result["cells"])
    if missing:
        print(f"{missing} cell(s) without a value: see their evaluation JSON")
    return 0
