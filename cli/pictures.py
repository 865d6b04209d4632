"""``kmq compare``, ``kmq sweep`` and ``kmq info --palette-image``: thin layers over :mod:`kmq.pictures`."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from kmq import files, images, pictures
from kmq.errors import ParameterError

from .batch import db

__all__ = ["cmd_compare", "cmd_sweep", "write_palette_image"]


def _refuse_existing(out: Path, force: bool, source: str | None = None) -> None:
    if source is not None and out.exists() and os.path.samefile(out, source):
        raise ParameterError(f"{out}: output would overwrite the input file; choose another -o")
    if out.exists() and not force:
        raise ParameterError(f"{out}: output exists (use --force to overwrite)")


def _picture_format(out: Path) -> str:
    return images.output_format(out)


def _save(out: Path, image: Any, fmt: str, force: bool) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **images.SAVE_OPTIONS.get(fmt, {}))
    files.atomic_write(out, buffer.getvalue(), overwrite=force)


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: (None if isinstance(v, float) and math.isinf(v) else v) for key, v in row.items()} for row in rows]


def cmd_compare(args: argparse.Namespace) -> None:
    """``kmq compare INPUT -k K ... -o compare.png``."""
    out = Path(args.output)
    fmt = _picture_format(out)
    _refuse_existing(out, args.force, args.input)
    pixels = images.load_image(args.input)
    picture, rows = pictures.compare(
        pixels,
        args.k,
        seed=args.seed,
        coding=args.coding,
        space=args.space,
        dither=args.dither,
        max_width=args.width,
        title=Path(args.input).name,
    )
    _save(out, picture.convert("RGB") if fmt == "JPEG" else picture, fmt, args.force)
    if args.json:
        print(json.dumps({"input": args.input, "output": str(out), "rows": _json_rows(rows)}, indent=2))
    elif not args.quiet:
        for row in rows:
            print(
                f"K={row['k']}: {row['file_bytes']:,} bytes, {row['bits_per_pixel']:.3f} bits/px "
                f"({row['coding']}), PSNR {db(row['psnr'])}"
            )
        print(f"wrote {out} ({picture.width}x{picture.height})")


def cmd_sweep(args: argparse.Namespace) -> None:
    """``kmq sweep INPUT --k 2,4,... -o sweep.png --csv sweep.csv``."""
    out = None if args.no_plot else Path(args.output)
    csv_out = Path(args.csv) if args.csv else None
    if out is not None:
        if out.suffix.lower() != ".png":
            raise ParameterError(f"{out}: the sweep plot is a PNG; name it .png (or use --no-plot)")
        pictures.require_matplotlib()  # before minutes of work, not after
        _refuse_existing(out, args.force, args.input)
    if csv_out is not None:
        if out is not None and os.path.abspath(csv_out) == os.path.abspath(out):
            raise ParameterError(f"{csv_out}: --csv and -o name the same file")
        _refuse_existing(csv_out, args.force, args.input)
    pixels = images.load_image(args.input)
    height, width = pixels.shape[:2]
    rows = pictures.sweep(pixels, args.k, seed=args.seed, space=args.space, dither=args.dither)
    best = pictures.elbow(rows)
    if out is not None:
        title = f"{Path(args.input).name}, {width}x{height}"
        files.atomic_write(out, pictures.sweep_figure(rows, title=title), overwrite=args.force)
    if csv_out is not None:
        text = io.StringIO()
        pictures.sweep_csv(rows, text)
        files.atomic_write(csv_out, text.getvalue().encode(), overwrite=args.force)
    if args.json:
        document = {"input": args.input, "width": width, "height": height, "elbow": best, "rows": _json_rows(rows)}
        print(json.dumps(document, indent=2))
        return
    if args.quiet:
        return
    print(f"{'K':>4} {'coding':<6} {'file bytes':>11} {'bits/px':>8} {'PSNR':>11}")
    for row in rows:
        mark = "  <- elbow" if row["k"] == best and row["coding"] == "ctx1" else ""
        print(
            f"{row['k']:>4} {row['coding']:<6} {row['file_bytes']:>11,} {row['bits_per_pixel']:>8.3f} "
            f"{db(row['psnr']):>11}{mark}"
        )
    written = [str(p) for p in (out, csv_out) if p is not None]
    elbow = f"K={best}" if best is not None else "none (the curve has no clear bend)"
    print(f"elbow: {elbow}" + (f"; wrote {', '.join(written)}" if written else ""), file=sys.stdout)


def write_palette_image(path: str, palette: Any, force: bool, source: str) -> None:
    """``kmq info --palette-image PATH``: the palette as swatches, in any image format Pillow writes."""
    out = Path(path)
    try:
        fmt = images.output_format(out)  # RGB: transparent entries are drawn over a checkerboard
        _refuse_existing(out, force, source)
    except ParameterError as exc:
        raise ParameterError(f"--palette-image {exc}") from None
    _save(out, pictures.palette_image(palette), fmt, force)
