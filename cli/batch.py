"""``kmq encode`` and ``kmq decode`` over one file or many: reporting around :mod:`kmq.batch`.

One file named on its own keeps the strict rule (an existing output is an
error without ``--force``). Anything else is a batch: several inputs, a
folder, a glob or ``-O DIR``; there, kmq's outputs newer than their input are
skipped as up to date, older ones are kept and reported as stale, a bad file
is reported and the rest go on, and the exit status is 1 if any file failed.
Decoded images are named ``NAME-kmq.EXT`` unless ``-o`` names one, so that they
never take an original's name; a file kmq did not write is replaced only when
``-o`` names it and ``--force`` is given (:func:`kmq.files.check_output`).
``-`` as the input reads standard input, as the output (``-o -``, and the
default for ``-``) writes standard output.
"""

from __future__ import annotations

import argparse
import glob
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kmq import batch, files, images
from kmq.batch import DecodeOptions, EncodeOptions, Job
from kmq.quantize import Options as QuantizeOptions

from .report import CommandError, Report, db, mode_word

__all__ = ["run_encode", "run_decode"]


def _encode_line(job: Job, info: dict[str, Any]) -> str:
    if info.get("format"):  # an image file, not a kmq file
        return (
            f"{job.source} ({info['input_bytes']:,} B) -> {job.output} ({info['file_bytes']:,} B): "
            f"{info['width']}x{info['height']} {mode_word(info['mode'])}, K={info['k']}, {info['format']} "
            f"{info['bits_per_pixel']:.3f} bit/px, PSNR {db(info['psnr'])}, {info['seconds']:.2f} s"
        )
    raw = "" if info["coding"] == "raw" else f" (raw {info['raw_bits']})"
    note = f" ({info['note']})" if info["note"] else ""
    return (
        f"{job.source} ({info['input_bytes']:,} B) -> {job.output} ({info['file_bytes']:,} B): "
        f"{info['width']}x{info['height']} {mode_word(info['mode'])}, K={info['k']}, "
        f"{info['coding']} payload {info['payload_bits_per_pixel']:.3f} bit/px{raw}, "
        f"file {info['bits_per_pixel']:.3f} bit/px, PSNR {db(info['psnr'])}, {info['seconds']:.2f} s{note}"
    )


def _decode_line(job: Job, info: dict[str, Any]) -> str:
    return (
        f"{job.source} -> {job.output} ({info['output_bytes']:,} B): {info['width']}x{info['height']} "
        f"{info['mode']}, K={info['k']}, {info['seconds']:.2f} s"
    )


def _workers(args: argparse.Namespace) -> int:
    return args.jobs if args.jobs is not None else (os.cpu_count() or 1)


def _is_batch(args: argparse.Namespace) -> bool:
    """Several inputs, an output folder, a folder or a glob; one file named alone is not a batch."""
    if len(args.inputs) > 1 or args.output_dir is not None:
        return True
    path = Path(args.inputs[0])
    return path.is_dir() or (not path.exists() and glob.has_magic(args.inputs[0]))


def _output_for(args: argparse.Namespace, name_for: Callable[[Path], Path]) -> Callable[[Path, Path], Path]:
    """Where each input's output goes: ``-o``, else under ``-O`` or beside it, named by ``name_for``."""
    if args.output is not None:
        return lambda source, relative: Path(args.output)
    if args.output_dir is not None:
        folder = Path(args.output_dir)
        return lambda source, relative: folder / name_for(relative)
    return lambda source, relative: Path(files.STDIO) if files.is_stdio(source) else name_for(source)


def _run(
    args: argparse.Namespace,
    *,
    verb: str,
    suffixes: frozenset[str],
    name_for: Callable[[Path], Path],
    work: batch.Work,
    options: EncodeOptions | DecodeOptions,
    describe: Callable[[Job, dict[str, Any]], str],
    output_format: str | None = None,
) -> int:
    report = Report(args)
    started = time.perf_counter()
    jobs, problems, many = _plan(args, suffixes, name_for)
    records: list[dict[str, Any]] = [
        {"input": argument, "output": None, "status": "failed", "error": message} for argument, message in problems
    ]
    for _, message in problems:
        report.error(message)
    if getattr(args, "shared_palette", False) and isinstance(options, EncodeOptions):
        options = _shared(report, jobs, options)
    workers = 1 if args.scheduler else _workers(args)
    _announce(report, jobs, verb, workers, args.scheduler)
    # One record per job, filled in as results arrive (workers finish in any order), listed in input order.
    by_job = _settled(report, jobs)
    megapixels = _run_jobs(report, args, jobs, by_job, verb, work, options, describe, workers)
    records += [by_job[id(job)] for job in jobs]
    elapsed = time.perf_counter() - started
    return _summarise(report, records, verb, many and bool(jobs), megapixels, elapsed, output_format)


def _shared(report: Report, jobs: list[Job], options: EncodeOptions) -> EncodeOptions:
    """``--shared-palette``: fit one palette on every input the plan found; warn of outputs that keep an older one."""
    sources = [job.source for job in jobs if job.action != "fail"]
    shared, problems = batch.shared_palette(sources, options)
    for message in problems:
        report.warning(message)
    kept = sum(job.action in ("skip", "stale") for job in jobs)
    if kept:
        report.warning(
            f"{kept} output(s) already there keep their own palette; --force rewrites them with the shared one"
        )
    assert shared.quantizer.palette is not None
    report.detail(f"shared palette: {len(shared.quantizer.palette)} colours fitted on {len(sources)} input(s)")
    return shared


def _plan(
    args: argparse.Namespace, suffixes: frozenset[str], name_for: Callable[[Path], Path]
) -> tuple[list[Job], list[tuple[str, str]], bool]:
    """The jobs, the arguments that named no input (with their message), and whether this is a batch."""
    if args.output_dir is not None and os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise CommandError(f"{args.output_dir}: -O names a folder, and this is a file")
    inputs, problems = batch.find_inputs(args.inputs, recursive=args.recursive, suffixes=suffixes)
    many = _is_batch(args)
    named = args.output is not None
    jobs = batch.plan(inputs, _output_for(args, name_for), force=args.force, batch=many, named=named)
    return jobs, problems, many


def _announce(report: Report, jobs: list[Job], verb: str, workers: int, scheduler: str | None) -> None:
    """The -v line that says what will be done, and where."""
    todo = sum(job.action == "run" for job in jobs)
    where = f"the Dask scheduler at {scheduler}" if scheduler else f"{min(workers, todo)} worker process(es)"
    kept = sum(j.action == "stale" for j in jobs)
    report.detail(
        f"{len(jobs)} input(s): {todo} to {verb}, {sum(j.action == 'skip' for j in jobs)} up to date, "
        + (f"{kept} stale, " if kept else "")
        + f"{sum(j.action == 'fail' for j in jobs)} refused; on {where}"
    )


def _settled(report: Report, jobs: list[Job]) -> dict[int, dict[str, Any]]:
    """Report the jobs the plan already settled (up to date, stale, refused); their records, by ``id(job)``."""
    by_job: dict[int, dict[str, Any]] = {}
    for job in jobs:
        record: dict[str, Any] = {"input": str(job.source), "output": str(job.output)}
        if job.action == "skip":
            report.detail(f"{job.reason}, skipped")
            by_job[id(job)] = {**record, "status": "skipped"}
        elif job.action == "stale":
            report.line(job.reason)
            by_job[id(job)] = {**record, "status": "stale"}
        elif job.action == "fail":
            report.error(job.reason)
            by_job[id(job)] = {**record, "status": "failed", "error": job.reason}
    return by_job


def _run_jobs(
    report: Report,
    args: argparse.Namespace,
    jobs: list[Job],
    by_job: dict[int, dict[str, Any]],
    verb: str,
    work: batch.Work,
    options: EncodeOptions | DecodeOptions,
    describe: Callable[[Job, dict[str, Any]], str],
    workers: int,
) -> float:
    """Run the jobs to run, and report each result (its output written) as it comes into ``by_job``; the megapixels."""
    placement = batch.Placement(
        force=args.force, named=args.output is not None, make_folders=args.output_dir is not None
    )
    # Standard output carries the image: the per-file line goes to stderr, with -v.
    result_line = report.detail if any(files.is_stdio(job.output) for job in jobs) else report.line
    megapixels = 0.0
    single = next((job for job in jobs if job.action == "run"), None)
    report.progress(
        sum(job.action == "run" for job in jobs), "file", what=f"{verb[:-1]}ing {single.source}" if single else ""
    )
    try:
        results = batch.run(jobs, work, options, workers=workers, scheduler=args.scheduler, placement=placement)
        for job, outcome in results:
            record = {"input": str(job.source), "output": str(job.output)}
            error = outcome.error
            if error:
                report.error(error)
                record.update(status="failed", error=error)
            else:
                megapixels += outcome.info["width"] * outcome.info["height"] / 1e6
                for warning in outcome.info.get("notes", ()):
                    report.warning(f"{job.source}: {warning}")
                if outcome.info.get("colour"):
                    report.detail(f"{job.source}: {outcome.info['colour']}")
                result_line(describe(job, outcome.info))
                record.update(status=f"{verb}d", **outcome.info)
            by_job[id(job)] = record
            report.advance()
    finally:
        report.close()
    return megapixels


def _summarise(
    report: Report,
    records: list[dict[str, Any]],
    verb: str,
    many: bool,
    megapixels: float,
    elapsed: float,
    output_format: str | None,
) -> int:
    """The lossy-format warning, the closing line of a batch (``many``) and the JSON document; the exit status."""
    statuses = (f"{verb}d", "skipped", "stale", "failed")
    counts = {status: sum(r["status"] == status for r in records) for status in statuses}
    if output_format is not None and counts[f"{verb}d"] and images.is_lossy(output_format):
        report.warning(
            f"{output_format} is lossy: what was written does not keep the exact palette colours "
            "(.png, .gif and .webp do)"
        )
    if many:
        done = counts[f"{verb}d"]
        rate = f": {done / elapsed:.1f} files/s, {megapixels / elapsed:.1f} MP/s" if done and elapsed > 0 else ""
        stale = f", {counts['stale']} stale" if counts["stale"] else ""
        report.line(
            f"{verb}d {done} file(s), {megapixels:.1f} MP in {elapsed:.2f} s{rate}; "
            f"{counts['skipped']} up to date{stale}, {counts['failed']} failed"
        )
    summary = {"command": verb, "files": records, "counts": counts, "megapixels": megapixels, "seconds": elapsed}
    report.emit_json(summary)
    return 1 if counts["failed"] else 0


def run_encode(args: argparse.Namespace, output_format: str | None = None) -> int:
    """``kmq encode``; returns the exit status. ``output_format``: write palette images of that Pillow format."""
    quantizer = QuantizeOptions(
        k=args.k,
        seed=args.seed,
        space=args.space,
        dither=args.dither,
        min_psnr=args.min_psnr,
        palette=args.palette,
        keep=args.keep,
    )
    options = EncodeOptions(
        quantizer=quantizer,
        coding=args.coding,
        max_pixels=args.max_pixels,
        frame=args.frame,
        colour_management=args.colour_management,
        output_format=output_format,
    )
    # Images are named as decoded images are, photo.png -> photo-kmq.png: never an original's name.
    suffix = args.suffix
    return _run(
        args,
        verb="encode",
        suffixes=images.image_suffixes(),
        name_for=lambda path: path.with_suffix(".kmq") if output_format is None else files.decoded_name(path, suffix),
        work=batch.encode_job,
        options=options,
        describe=_encode_line,
        output_format=output_format,
    )


def run_decode(args: argparse.Namespace, output_format: str | None = None) -> int:
    """``kmq decode``; returns the exit status. ``output_format``: the outputs' Pillow format, if known."""
    named = args.output is not None and not files.is_stdio(args.output)
    options = DecodeOptions(suffix=Path(args.output).suffix if named else args.suffix, max_pixels=args.max_pixels)
    return _run(
        args,
        verb="decode",
        suffixes=frozenset({".kmq"}),
        name_for=lambda path: files.decoded_name(path, args.suffix),
        work=batch.decode_job,
        options=options,
        describe=_decode_line,
        output_format=output_format,
    )
