"""The ``kmq`` command: encode, decode, info and demo.

This layer parses arguments, calls the library and prints; all the work is in
``kmq``. Every failure is one line on stderr: exit 1 for errors, 2 for usage.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kmq
from kmq import container, files, images, metrics
from kmq.errors import KmqError
from kmq.quantize import MAX_SEED, SPACES

__all__ = ["main", "build_parser"]

PROG = "kmq"
SAMPLE = "china.jpg"


class CommandError(Exception):
    """A failure the command reports in one line (exit 1)."""


def _k(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"K must be an integer, got {text!r}") from None
    if not 1 <= value <= container.MAX_K:
        raise argparse.ArgumentTypeError(f"K must be in 1..{container.MAX_K}, got {value}")
    return value


def _k_or_auto(text: str) -> int | str:
    return text if text == "auto" else _k(text)


def _decibels(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"PSNR must be a number of dB, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"PSNR must be a positive number of dB, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be in 0..{MAX_SEED}, got {value}")
    return value


def _coding(text: str) -> str:
    names = {str(number): name for number, name in container.CODINGS.items()}
    if text in names.values():
        return text
    if text in names:
        return names[text]
    raise argparse.ArgumentTypeError(f"{text!r} is not a payload coding: choose ctx1 (1) or raw (0)")


def _max_pixels(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"max pixels must be a positive integer or 'none', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"max pixels must be at least 1, got {value}")
    return value


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _check_output(source: Path, out: Path, force: bool) -> None:
    if not source.exists():
        raise CommandError(f"{source}: no such file")
    if _same_file(source, out):
        raise CommandError(f"{out}: output would overwrite the input file; choose another -o")
    if out.exists() and not force:
        raise CommandError(f"{out}: output exists (use --force to overwrite)")


def _bpp(nbytes: int, pixels: int) -> float:
    return 8 * nbytes / pixels


def _payload_bpp(header: container.Header, file_bytes: int) -> float:
    """Payload bits per pixel: the label width for raw packing (its last byte's padding is not a rate)."""
    if header.coding == container.CODING_RAW:
        return float(header.bits)
    return _bpp(file_bytes - header.overhead, header.pixels)


def _mode(channels: int) -> str:
    return "RGBA" if channels == 4 else "RGB"


def _db(value: float) -> str:
    return "lossless" if math.isinf(value) else f"{value:.2f} dB"


def cmd_encode(args: argparse.Namespace) -> None:
    source = Path(args.input)
    out = Path(args.output) if args.output else source.with_suffix(".kmq")
    _check_output(source, out, args.force)
    if images.is_image_path(out):
        raise CommandError(f"{out}: {out.suffix} is an image format; kmq files end in .kmq (to decode, use kmq decode)")
    start = time.perf_counter()
    pixels = images.load_image(source)
    indexed = kmq.quantize(pixels, args.k, seed=args.seed, space=args.space, dither=args.dither, min_psnr=args.min_psnr)
    data = indexed.to_bytes(args.coding)
    header = container.Header.unpack(data)
    note = ""
    if container.coding_number(args.coding) != header.coding:
        note = " (ctx1 would not have been smaller, so raw packing was written)"
    elapsed = time.perf_counter() - start
    files.atomic_write(out, data, overwrite=args.force)
    n = indexed.width * indexed.height
    payload = _payload_bpp(header, len(data))
    raw = "" if header.coding == container.CODING_RAW else f" (raw {header.bits})"
    print(
        f"{source} ({source.stat().st_size:,} B) -> {out} ({len(data):,} B): "
        f"{indexed.width}x{indexed.height} {_mode(indexed.channels)}, K={indexed.k}, "
        f"{container.CODINGS[header.coding]} payload {payload:.3f} bit/px{raw}, file {_bpp(len(data), n):.3f} bit/px, "
        f"PSNR {_db(metrics.psnr(pixels, indexed.to_array()))}, {elapsed:.2f} s{note}"
    )


def cmd_decode(args: argparse.Namespace) -> None:
    source = Path(args.input)
    out = Path(args.output) if args.output else source.with_suffix(".png")
    fmt = images.output_format(out)
    _check_output(source, out, args.force)
    start = time.perf_counter()
    indexed = files.read_indexed(source, max_pixels=args.max_pixels)
    if indexed.channels == 4:
        images.output_format(out, channels=4)
    pixels = indexed.to_array()
    files.atomic_write(out, lambda f: images.save_image(f, pixels, fmt), overwrite=args.force)
    print(
        f"{source} -> {out} ({out.stat().st_size:,} B): {indexed.width}x{indexed.height} "
        f"{_mode(indexed.channels)}, K={indexed.k}, {time.perf_counter() - start:.2f} s"
    )


def describe(path: Path, max_pixels: int | None = container.DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    """Everything ``kmq info`` reports about a kmq file, as JSON-able values.

    The file is validated completely (checksum and every label) first.

    Parameters
    ----------
    path : Path
        A kmq file.
    max_pixels : int or None
        The decoder's pixel limit.

    Returns
    -------
    dict
        Header fields, palette as ``#rrggbb[aa]`` strings, section sizes and bits per pixel.
    """
    data, header, palette, _ = files.read_file(path, max_pixels=max_pixels)
    n = header.pixels
    raw = n * header.channels
    file_bytes = len(data)
    payload = file_bytes - header.overhead
    stripes = None
    if header.coding == container.CODING_CTX1:
        stripes = int.from_bytes(data[container.HEADER.size + header.palette_size :][:2], "big")
    return {
        "file": str(path),
        "version": header.version,
        "coding": header.coding,
        "coding_name": container.CODINGS[header.coding],
        "width": header.width,
        "height": header.height,
        "pixels": n,
        "channels": header.channels,
        "mode": _mode(header.channels),
        "k": header.k,
        "bits_per_label": header.bits,
        "palette": ["#" + entry.tobytes().hex() for entry in palette],
        "header_bytes": container.HEADER.size,
        "palette_bytes": header.palette_size,
        "payload_bytes": payload,
        "payload_bits_per_pixel": _payload_bpp(header, file_bytes),
        "padding_bits": payload * 8 - n * header.bits if header.coding == container.CODING_RAW else None,
        "stripes": stripes,
        "raw_payload_bytes": header.raw_payload_size,
        "raw_payload_bits_per_pixel": float(header.bits),
        "checksum_bytes": container.CHECKSUM.size,
        "file_bytes": file_bytes,
        "file_bits_per_pixel": _bpp(file_bytes, n),
        "raw_bytes": raw,
        "ratio": raw / file_bytes,
        "checksum": "ok",
    }


def cmd_info(args: argparse.Namespace) -> None:
    info = describe(Path(args.file), args.max_pixels)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    swatches = "\n".join(f"  {i:3d}  {c}" for i, c in enumerate(info["palette"]))
    if info["coding"] == container.CODING_RAW:
        detail = f"({info['padding_bits']} padding bits)"
    else:
        plural = "" if info["stripes"] == 1 else "s"
        times = info["raw_payload_bytes"] / info["payload_bytes"]
        detail = (
            f"in {info['stripes']} stripe{plural}; raw packing would need "
            f"{info['raw_payload_bits_per_pixel']:.3f} bits per pixel ({info['raw_payload_bytes']:,} bytes, "
            f"{times:.2f} times this payload)"
        )
    print(
        f"file      {info['file']}\n"
        f"format    kmq version {info['version']}, payload coding {info['coding']} ({info['coding_name']})\n"
        f"image     {info['width']} x {info['height']} = {info['pixels']:,} pixels, {info['mode']}\n"
        f"palette   K={info['k']}, {info['bits_per_label']} bits per label\n{swatches}\n"
        f"payload   {info['payload_bits_per_pixel']:.3f} bits per pixel: {info['payload_bytes']:,} bytes {detail}\n"
        f"file      {info['file_bits_per_pixel']:.3f} bits per pixel: {info['file_bytes']:,} bytes "
        f"(header {info['header_bytes']}, palette {info['palette_bytes']}, payload {info['payload_bytes']:,}, "
        f"checksum {info['checksum_bytes']})\n"
        f"ratio     {info['ratio']:.2f} : 1 against raw {info['mode']} ({info['raw_bytes']:,} bytes)\n"
        "checksum  CRC-32 verified; every label checked against K"
    )


def _demo_folder(requested: str | None) -> Path:
    if requested:
        return Path(requested)
    folder, n = Path("kmq-demo"), 1
    while folder.exists():
        n += 1
        folder = Path(f"kmq-demo-{n}")
    return folder


def cmd_demo(args: argparse.Namespace) -> None:
    from sklearn.datasets import load_sample_image

    folder = _demo_folder(args.outdir)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"{folder}: not a folder")
    stem = Path(SAMPLE).stem
    original, encoded, decoded = (folder / f"{stem}{suffix}" for suffix in (".png", ".kmq", "-decoded.png"))
    for out in (original, encoded, decoded):
        if out.exists() and not args.force:
            raise CommandError(f"{out}: output exists (use --force, or give another folder)")
    pixels = load_sample_image(SAMPLE)
    height, width = pixels.shape[:2]
    n = width * height
    start = time.perf_counter()
    data = kmq.encode(pixels, args.k, seed=args.seed)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    restored = kmq.decode(data)
    decode_s = time.perf_counter() - start
    # Everything is computed before the first file is written, so only a disk
    # error can stop the demo halfway.
    pngs = {}
    for path, image in ((original, pixels), (decoded, restored)):
        buffer = io.BytesIO()
        images.save_image(buffer, image, "PNG")
        pngs[path] = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    for out, content in ((original, pngs[original]), (encoded, data), (decoded, pngs[decoded])):
        files.atomic_write(out, content, overwrite=args.force)
    header = container.loads(data)[0]
    print(f"kmq demo: scikit-learn's sample photo {SAMPLE}, {width}x{height} RGB, K={args.k}")
    print(f"wrote into {folder}{os.sep}")
    coding = container.CODINGS[header.coding]
    rows = [
        ("raw RGB (not written)", n * 3),
        (f"{original.name} (original, PNG)", original.stat().st_size),
        (f"{encoded.name} (kmq, {coding})", len(data)),
        ("the same in raw packing (not written)", header.overhead + header.raw_payload_size),
        (f"{decoded.name} (decoded, PNG)", decoded.stat().st_size),
    ]
    for label, size in rows:
        print(f"  {label:<38} {size:>10,} bytes {_bpp(size, n):7.3f} bits/px")
    print(
        f"palette K={header.k}, {coding} payload {_payload_bpp(header, len(data)):.3f} bits/px "
        f"(raw packing {header.bits:.3f}), PSNR {_db(metrics.psnr(pixels, restored))}, "
        f"encode {encode_s:.2f} s, decode {decode_s:.3f} s"
    )


EPILOG = """examples:
  kmq demo                       encode the built-in sample photo, write ./kmq-demo/
  kmq encode photo.jpg -k 8      write photo.kmq at 3 bits per pixel
  kmq encode photo.jpg -k auto --min-psnr 32    the fewest colours that reach 32 dB
  kmq info photo.kmq --json      show the header, palette and bits per pixel
  kmq decode photo.kmq -o out.png
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``kmq`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="K-means colour quantization into a bit-packed image file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {kmq.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, example: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help, description=help, epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        p.set_defaults(command_parser=p)  # so an unknown option gets this command's usage
        return p

    limit_help = f"refuse images with more pixels than this, or 'none' (default: {container.DEFAULT_MAX_PIXELS:,})"
    force_help = "replace an existing output file (it is only replaced once the new one is complete)"
    p = command(
        "encode", "quantize an image to K colours and write a .kmq file", "kmq encode photo.jpg -k 16 -o small.kmq"
    )
    p.add_argument("input", help="image file in any format Pillow reads (PNG, JPEG, WebP, TIFF, ...)")
    p.add_argument("-o", "--output", help="output path (default: INPUT with the suffix .kmq)")
    p.add_argument(
        "-k",
        type=_k_or_auto,
        default=8,
        metavar="K",
        help="palette size, 1..256 (default: 8, i.e. 3 bits per pixel), or 'auto' with --min-psnr",
    )
    p.add_argument(
        "--min-psnr",
        type=_decibels,
        metavar="DB",
        help="with -k auto: the smallest K whose result reaches this PSNR, e.g. -k auto --min-psnr 32",
    )
    p.add_argument(
        "--space",
        choices=SPACES,
        default="rgb",
        help="cluster in plain RGB (best PSNR, the default) or in Oklab, a perceptual colour space",
    )
    p.add_argument(
        "--dither", action="store_true", help="Floyd-Steinberg dithering (RGB images); smoother gradients, lower PSNR"
    )
    p.add_argument("--seed", type=_seed, default=0, help="k-means++ seed; same seed, same file (default: 0)")
    p.add_argument(
        "--coding",
        type=_coding,
        default=container.DEFAULT_CODING,
        metavar="{ctx1,raw}",
        help="payload coding: ctx1 (or 1) = context-modelled, on photos 3 to 11 times smaller than raw; where it "
        "would not be smaller, raw is written instead (default); raw (or 0) = exactly ceil(log2 K) bits per pixel",
    )
    p.add_argument("--force", action="store_true", help=force_help)
    p.set_defaults(run=cmd_encode, check=lambda args, parser=p: _check_encode_options(parser, args))

    p = command("decode", "decode a .kmq file to an image", "kmq decode photo.kmq -o photo.webp")
    p.add_argument("input", help="a .kmq file")
    p.add_argument("-o", "--output", help="output image; format from its extension (default: INPUT with .png)")
    p.add_argument("--force", action="store_true", help=force_help)
    p.add_argument("--max-pixels", type=_max_pixels, default=container.DEFAULT_MAX_PIXELS, help=limit_help)
    p.set_defaults(run=cmd_decode)

    p = command("info", "show a .kmq file's header, palette and true bits per pixel", "kmq info photo.kmq --json")
    p.add_argument("file", help="a .kmq file (checked completely, checksum included)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--max-pixels", type=_max_pixels, default=container.DEFAULT_MAX_PIXELS, help=limit_help)
    p.set_defaults(run=cmd_info)

    p = command("demo", "encode and decode a built-in sample photo, report sizes and quality", "kmq demo /tmp/kmq-demo")
    p.add_argument("outdir", nargs="?", help="folder for the outputs (default: ./kmq-demo, or -2, -3... if taken)")
    p.add_argument("-k", type=_k, default=8, metavar="K", help="palette size, 1..256 (default: 8)")
    p.add_argument("--seed", type=_seed, default=0, help="k-means++ seed (default: 0)")
    p.add_argument("--force", action="store_true", help="replace earlier demo outputs in OUTDIR")
    p.set_defaults(run=cmd_demo)
    return parser


def _describe_os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _check_encode_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.k == "auto" and args.min_psnr is None:
        parser.error("-k auto needs --min-psnr DB")
    if args.k != "auto" and args.min_psnr is not None:
        parser.error("--min-psnr goes with -k auto")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kmq`` command; returns the exit status (0, 1 error, 2 usage, 130 interrupted)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if hasattr(args, "check"):
        args.check(args)
    try:
        args.run(args)
    except (KmqError, CommandError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader (e.g. `| head`) has gone: stay quiet, as a Unix filter does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        print(f"{PROG}: error: {_describe_os_error(exc)}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{PROG}: error: out of memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, with a way to see more
        if os.environ.get("KMQ_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (set KMQ_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
