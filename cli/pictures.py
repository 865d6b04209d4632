"""``kmq compare``, ``kmq sweep`` and ``kmq info --palette-image``: thin layers over :mod:`kmq.pictures`."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from kmq import container, files, images, pictures
from kmq.errors import ParameterError

from .report import Report, db

__all__ = ["cmd_compare", "cmd_sweep", "palette_image_format", "write_palette_image"]


def _write_image(out: Path, picture: Any, fmt: str, force: bool) -> None:
    buffer = io.BytesIO()
    images.save_image(buffer, picture, fmt)
    files.atomic_write(out, buffer.getvalue(), overwrite=force)


def _steps(step: Callable[[str], None]) -> pictures.Progress:
    """A :mod:`kmq.pictures` progress callback that shows each K on the status line."""
    return lambda k, i, n: step(f"K={k} ({i} of {n})")


def _load(args: argparse.Namespace, report: Report) -> np.ndarray:
    """The input's pixels as ``encode`` would see them (``--frame``, colour management), warnings said."""
    loaded = images.load(
        args.input, frame=args.frame, colour_management=args.colour_management, max_pixels=args.max_pixels
    )
    for note in loaded.notes:
        report.warning(f"{args.input}: {note}")
    return loaded.pixels


def cmd_compare(args: argparse.Namespace) -> None:
    """``kmq compare INPUT -k K ... -o compare.png``."""
    report = Report(args)
    out = Path(args.output)
    fmt = images.output_format(out)
    files.check_output(out, args.input, force=args.force)
    with report.status(f"compare {args.input}") as step:
        step("reading")
        pixels = _load(args, report)
        picture, rows = pictures.compare(
            pixels,
            args.k,
            seed=args.seed,
            coding=args.coding,
            space=args.space,
            dither=args.dither,
            max_width=args.width,
            title=Path(args.input).name,
            progress=_steps(step),
        )
        step("writing")
        _write_image(out, picture, fmt, args.force)
    for row in rows:
        report.line(
            f"K={row['k']}: {row['file_bytes']:,} bytes, {row['bits_per_pixel']:.3f} bits/px "
            f"({row['coding']}), PSNR {db(row['psnr'])}, SSIM {row['ssim']:.4f}"
        )
    report.line(f"wrote {out} ({picture.width}x{picture.height})")
    report.emit_json({"input": args.input, "output": str(out), "rows": rows})


def cmd_sweep(args: argparse.Namespace) -> None:
    """``kmq sweep INPUT --k 2,4,... -o sweep.png --csv sweep.csv``."""
    report = Report(args)
    out = None if args.no_plot else Path(args.output)
    csv_out = Path(args.csv) if args.csv else None
    if out is not None:
        if out.suffix.lower() != ".png":
            raise ParameterError(f"{out}: the sweep plot is a PNG; name it .png (or use --no-plot)")
        pictures.require_matplotlib()  # before minutes of work, not after
        files.check_output(out, args.input, force=args.force)
    if csv_out is not None:
        if out is not None and files.same_file(csv_out, out):
            raise ParameterError(f"{csv_out}: --csv and -o name the same file")
        files.check_output(csv_out, args.input, force=args.force)
    with report.status(f"sweep {args.input}") as step:
        step("reading")
        pixels = _load(args, report)
        height, width = pixels.shape[:2]
        rows = pictures.sweep(
            pixels, args.k, seed=args.seed, space=args.space, dither=args.dither, progress=_steps(step)
        )
        best = pictures.elbow(rows)
        if out is not None:
            step("drawing the plot")
            title = f"{Path(args.input).name}, {width}x{height}"
            files.atomic_write(out, pictures.sweep_figure(rows, title=title), overwrite=args.force)
    if csv_out is not None:
        text = io.StringIO()
        pictures.sweep_csv(rows, text)
        files.atomic_write(csv_out, text.getvalue().encode(), overwrite=args.force)
    report.line(f"{'K':>4} {'coding':<6} {'file bytes':>11} {'bits/px':>8} {'PSNR':>11} {'SSIM':>7}")
    for row in rows:
        mark = "  <- elbow" if row["k"] == best and row["coding"] == container.DEFAULT_CODING else ""
        report.line(
            f"{row['k']:>4} {row['coding']:<6} {row['file_bytes']:>11,} {row['bits_per_pixel']:>8.3f} "
            f"{db(row['psnr']):>11} {row['ssim']:>7.4f}{mark}"
        )
    written = [str(p) for p in (out, csv_out) if p is not None]
    elbow = f"K={best}" if best is not None else "none (the curve has no clear bend)"
    report.line(f"elbow: {elbow}" + (f"; wrote {', '.join(written)}" if written else ""))
    report.emit_json({"input": args.input, "width": width, "height": height, "elbow": best, "rows": rows})


def palette_image_format(path: str) -> str:
    """The Pillow format for ``--palette-image PATH``, refused before the kmq file is read."""
    try:
        return images.output_format(path)  # RGB: transparent entries are drawn over a checkerboard
    except ParameterError as exc:
        raise ParameterError(f"--palette-image {exc}") from None


def write_palette_image(path: str, palette: np.ndarray, fmt: str, force: bool, source: str) -> None:
    """``kmq info --palette-image PATH``: the palette as swatches, in ``fmt``."""
    out = Path(path)
    try:
        files.check_output(out, source, force=force)
    except OSError as exc:
        raise ParameterError(f"--palette-image {files.describe_os_error(exc)}") from None
    except ParameterError as exc:
        raise ParameterError(f"--palette-image {exc}") from None
    _write_image(out, pictures.palette_image(palette), fmt, force)
