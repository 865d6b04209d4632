"""The ``kmq`` command: encode, decode, info, compare, sweep, demo, view, gallery and completion.

This module parses arguments and runs the single-file commands; ``batch``
(encode and decode over many files), ``pictures`` (compare, sweep) and
``web`` (view, gallery) and ``completion`` hold the others, and ``report`` how they all speak. All the
work is in ``kmq``. Every failure is one line on stderr: exit 1 for errors, 2
for usage, 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP (``signals``).
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from shlex import quote
from typing import Any, TypeAlias

import kmq
import numpy as np
from kmq import container, ctx1, files, images, metrics, mix, pictures
from kmq.colour import DEFAULT_SPACE
from kmq.errors import KmqError
from kmq.palettes import BUILTIN
from kmq.quantize import DEFAULT_DITHER_STRENGTH, DEFAULT_K, MAX_SEED, SPACES

from . import batch as batch_cli
from . import completion, signals
from . import pictures as picture_cli
from .report import PROG, CommandError, Report, db, failure_document, mode_word

__all__ = ["main", "build_parser"]

SAMPLE = "china.jpg"


def _integer(text: str, name: str, low: int, high: int | None = None) -> int:
    """An option's integer in ``low..high`` (no upper bound if None), or an error naming it and the range."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
    if high is None and value < low:
        raise argparse.ArgumentTypeError(f"{name} must be at least {low}, got {value}")
    if high is not None and not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{name} must be in {low}..{high}, got {value}")
    return value


def _k(text: str) -> int:
    return _integer(text, "K", 1, container.MAX_K)


def _seed(text: str) -> int:
    return _integer(text, "seed", 0, MAX_SEED)


def _jobs(text: str) -> int:
    return _integer(text, "jobs", 1)


def _frame(text: str) -> int:
    return _integer(text, "frame", 1)


def _width(text: str) -> int:
    return _integer(text, "width", 16, 2048)  # pixels per panel; several panels at 2048 are already large


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


#: The payload codings by number, highest (the default, mix) first.
_CODINGS_NEWEST_FIRST = sorted(container.CODINGS.items(), reverse=True)
#: Every payload coding by name and number, for messages: "mix (2), ctx1 (1) or raw (0)".
CODING_CHOICES = " or ".join(", ".join(f"{name} ({number})" for number, name in _CODINGS_NEWEST_FIRST).rsplit(", ", 1))
#: The ``--coding`` metavar, every coding's name: "{mix,ctx1,raw}".
CODING_METAVAR = "{" + ",".join(name for _, name in _CODINGS_NEWEST_FIRST) + "}"


def _coding(text: str) -> str:
    names = {str(number): name for number, name in container.CODINGS.items()}
    if text in names.values():
        return text
    if text in names:
        return names[text]
    raise argparse.ArgumentTypeError(f"{text!r} is not a payload coding: choose {CODING_CHOICES}")


def _suffix(text: str) -> str:
    suffix = text if text.startswith(".") else f".{text}"
    if len(suffix) < 2 or "/" in suffix or os.sep in suffix:
        raise argparse.ArgumentTypeError(f"{text!r} is not a file extension such as .png")
    return suffix.lower()


def _k_list(text: str) -> list[int]:
    return [_k(part) for part in text.split(",") if part.strip()] or [_k(text)]


def _flatten_k(args: argparse.Namespace) -> None:
    args.k = list(dict.fromkeys(k for group in args.k for k in group))


def _max_pixels(text: str) -> int | None:
    if text.lower() == "none":
        return None
    return _integer(text, "max pixels (or 'none')", 1)


def _dither_alone(words: list[str]) -> list[str]:
    """``--dither photo.png``: a ``--dither`` followed by a word that is no dither value stands alone.

    argparse gives an optional value (``nargs="?"``) the next word whatever it is, so without this
    ``kmq encode --dither photo.png`` would take the input as the strength.
    """
    end = words.index("--") if "--" in words else len(words)
    out = list(words)
    for i in range(end):
        if words[i] == "--dither" and (i + 1 >= end or not _is_dither_value(words[i + 1])):
            out[i] = f"--dither={DEFAULT_DITHER_STRENGTH}"
    return out


def _is_dither_value(word: str) -> bool:
    if word == "ordered":
        return True
    try:
        float(word)
    except ValueError:
        return False
    return True


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error also prints the JSON failure document when ``--json`` was given.

    Subcommand parsers are made with the parent's class, so every usage error comes through here:
    those argparse finds, and those the checks after parsing raise with ``parser.error``.
    """

    _wants_json = False
    #: Set by the top-level parser for the whole command line, so that a subcommand's parser,
    #: which sees only the words after the command, still knows of ``kmq --json info ...``.
    _command_line_wants_json = False

    def parse_known_args(  # type: ignore[override]  # one signature for typeshed's three overloads
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> Any:
        words = _dither_alone(list(sys.argv[1:] if args is None else args))
        # A usage error can come before --json is parsed (or instead of it), so look at the words.
        self._wants_json = "--json" in words[: words.index("--")] if "--" in words else "--json" in words
        if self.prog == PROG:
            _Parser._command_line_wants_json = self._wants_json
        return super().parse_known_args(words, namespace)

    def error(self, message: str) -> Any:  # argparse declares NoReturn
        if self._wants_json or _Parser._command_line_wants_json:
            command = self.prog.removeprefix(PROG).strip() or None
            print(json.dumps(failure_document(command, message), indent=2))
        super().error(message)


def _holds_kmq(path: Path) -> bool:
    with files.open_input(path) as source:
        return source.read(len(container.MAGIC)) == container.MAGIC


def _refuse_the_other_command(args: argparse.Namespace, verb: str) -> None:
    """``kmq decode photo.png`` or ``kmq encode photo.kmq``: point at the command meant, judged by content.

    Only one file named alone is judged (a batch reports each file as usual); a
    ``.kmq`` name holding a PNG, or a ``.png`` name holding a kmq file, is left
    to the usual rules, which refuse to overwrite the input.
    """
    if len(args.inputs) != 1 or args.output_dir is not None:
        return
    path = Path(args.inputs[0])
    try:
        if not path.is_file():  # folders, globs, FIFOs and devices go their usual way
            return
        holds_kmq = _holds_kmq(path)
        if verb == "decode" and not holds_kmq:
            fmt = images.identify(path)
            raise CommandError(f"{path}: a {fmt} image, not a kmq file: did you mean `kmq encode {quote(str(path))}`?")
    except (OSError, KmqError):
        return  # not an image either: decoding reports what is wrong with it
    default_output = args.output is None and files.same_file(path, path.with_suffix(".kmq"))
    if verb == "encode" and holds_kmq and default_output:
        raise CommandError(
            f"{path}: already a kmq file: did you mean `kmq decode {quote(str(path))}`? (to re-encode it, give -o)"
        )


def _image_output(args: argparse.Namespace) -> str | None:
    """The Pillow format of the outputs (``-o`` or ``--suffix``), checked before any work; None for kmq files."""
    named = args.output is not None and not files.is_stdio(args.output)
    out = Path(args.output) if named else Path("out").with_suffix(args.suffix)
    if args.command == "encode" and not images.is_image_path(out):
        return None  # .kmq, or a name of the user's own: a kmq file
    return images.output_format(out)


def cmd_encode(args: argparse.Namespace) -> int:
    _refuse_the_other_command(args, "encode")
    return batch_cli.run_encode(args, _image_output(args))


def cmd_decode(args: argparse.Namespace) -> int:
    _refuse_the_other_command(args, "decode")
    return batch_cli.run_decode(args, _image_output(args))  # a bad format is refused before any work


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
    return _describe(path, max_pixels)[0]


def _describe(path: Path, max_pixels: int | None) -> tuple[dict[str, Any], np.ndarray]:
    data, header, palette, _ = files.read_file(path, max_pixels=max_pixels)
    n = header.pixels
    # The format stores RGB, but a palette of greys decodes to a grey image: its raw size is 1 byte per pixel.
    grey = bool((palette[:, 0] == palette[:, 1]).all() and (palette[:, 1] == palette[:, 2]).all())
    mode = ("L" if header.channels == 3 else "LA") if grey else header.mode
    raw = n * len(mode)
    file_bytes = len(data)
    payload = file_bytes - header.overhead
    stripes = container.read_stripe_count(data, header)
    info = {
        "file": str(path),
        "version": header.version,
        "coding": header.coding,
        "coding_name": container.CODINGS[header.coding],
        "width": header.width,
        "height": header.height,
        "pixels": n,
        "channels": header.channels,
        "mode": mode,
        "grey": grey,
        "k": header.k,
        "bits_per_label": header.bits,
        "palette": ["#" + entry.tobytes().hex() for entry in palette],
        "header_bytes": container.HEADER.size,
        "palette_bytes": header.palette_size,
        "payload_bytes": payload,
        "payload_bits_per_pixel": header.payload_bits_per_pixel(file_bytes),
        "padding_bits": payload * 8 - n * header.bits if header.coding == container.CODING_RAW else None,
        "stripes": stripes,
        "raw_payload_bytes": header.raw_payload_size,
        "raw_payload_bits_per_pixel": float(header.bits),
        "checksum_bytes": container.CHECKSUM.size,
        "file_bytes": file_bytes,
        "file_bits_per_pixel": header.file_bits_per_pixel(file_bytes),
        "raw_bytes": raw,
        "ratio": raw / file_bytes,
        "checksum": "ok",
    }
    return info, palette


def cmd_info(args: argparse.Namespace) -> None:
    swatch_format = picture_cli.palette_image_format(args.palette_image) if args.palette_image else None
    info, palette = _describe(Path(args.file), args.max_pixels)
    if swatch_format is not None:
        picture_cli.write_palette_image(args.palette_image, palette, swatch_format, args.force, args.file)
        info["palette_image"] = args.palette_image
    if args.json:
        Report(args).emit_json(info)
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
        f"image     {info['width']} x {info['height']} = {info['pixels']:,} pixels, {mode_word(info['mode'])}\n"
        f"palette   K={info['k']}, {info['bits_per_label']} bits per label\n{swatches}\n"
        f"payload   {info['payload_bits_per_pixel']:.3f} bits per pixel: {info['payload_bytes']:,} bytes {detail}\n"
        f"file      {info['file_bits_per_pixel']:.3f} bits per pixel: {info['file_bytes']:,} bytes "
        f"(header {info['header_bytes']}, palette {info['palette_bytes']}, payload {info['payload_bytes']:,}, "
        f"checksum {info['checksum_bytes']})\n"
        f"ratio     {info['ratio']:.2f} : 1 against raw {mode_word(info['mode'])} ({info['raw_bytes']:,} bytes)\n"
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
        files.check_output(out, force=args.force)
    pixels = load_sample_image(SAMPLE)
    height, width = pixels.shape[:2]
    n = width * height
    start = time.perf_counter()
    data = kmq.encode(pixels, args.k, seed=args.seed)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    indexed = kmq.Indexed.from_bytes(data)
    restored = indexed.to_array()
    decode_s = time.perf_counter() - start
    # Everything is computed before the first file is written, so only a disk
    # error can stop the demo halfway.
    buffer = io.BytesIO()
    images.save_image(buffer, pixels, "PNG")
    pngs = {original: buffer.getvalue()}
    buffer = io.BytesIO()
    images.save_indexed(buffer, indexed, "PNG")
    pngs[decoded] = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    for out, content in ((original, pngs[original]), (encoded, data), (decoded, pngs[decoded])):
        files.atomic_write(out, content, overwrite=args.force)
    header = container.loads(data)[0]
    coding = container.CODINGS[header.coding]
    rows = [
        ("raw RGB (not written)", None, n * 3),
        (f"{original.name} (original, PNG)", original, original.stat().st_size),
        (f"{encoded.name} (kmq, {coding})", encoded, len(data)),
        ("the same in raw packing (not written)", None, header.overhead + header.raw_payload_size),
        (f"{decoded.name} (decoded, PNG)", decoded, decoded.stat().st_size),
    ]
    psnr = metrics.psnr(pixels, restored)
    report = Report(args)
    if args.json:
        report.emit_json(_demo_document(folder, width, height, header, rows, len(data), psnr, encode_s, decode_s))
        return
    report.line(f"kmq demo: scikit-learn's sample photo {SAMPLE}, {width}x{height} RGB, K={args.k}")
    report.line(f"wrote into {folder}{os.sep}")
    for label, _, size in rows:
        report.line(f"  {label:<38} {size:>10,} bytes {header.file_bits_per_pixel(size):7.3f} bits/px")
    report.line(
        f"palette K={header.k}, {coding} payload {header.payload_bits_per_pixel(len(data)):.3f} bits/px "
        f"(raw packing {header.bits:.3f}), PSNR {db(psnr)}, encode {encode_s:.2f} s, decode {decode_s:.3f} s"
    )


def _demo_document(
    folder: Path,
    width: int,
    height: int,
    header: container.Header,
    rows: list[tuple[str, Path | None, int]],
    kmq_bytes: int,
    psnr: float,
    encode_s: float,
    decode_s: float,
) -> dict[str, Any]:
    """``kmq demo --json``: the sample, the files in ``rows`` (what, path, bytes) and the measured figures."""
    return {
        "image": SAMPLE,
        "folder": str(folder),
        "width": width,
        "height": height,
        "k": header.k,
        "coding": container.CODINGS[header.coding],
        "files": [
            {
                "what": label,
                "path": str(path) if path else None,
                "bytes": size,
                "bits_per_pixel": header.file_bits_per_pixel(size),
            }
            for label, path, size in rows
        ],
        "payload_bits_per_pixel": header.payload_bits_per_pixel(kmq_bytes),
        "psnr": None if math.isinf(psnr) else psnr,
        "encode_seconds": encode_s,
        "decode_seconds": decode_s,
    }


def cmd_completion(args: argparse.Namespace) -> None:
    print(completion.script(build_parser(), args.shell, PROG), end="")


#: What mix, the default, gives at K=8, measured (tests/test_help_text.py checks it).
MIX_AT_K8 = "at K=8 0.18 to 1.48 bits per pixel on the 24 Kodak photos (mean 0.64)"
#: What ctx1 gives at K=8, measured (README's payload codings, BENCHMARKS.md; tests/test_help_text.py checks it).
CTX1_AT_K8 = "at K=8 0.20 to 1.63 bits per pixel on the 24 Kodak photos (mean 0.71), 0.27 on a 12 MP photo"

EPILOG = """examples:
  kmq demo                       encode the built-in sample photo, write ./kmq-demo/
  kmq encode photo.jpg -k 8      write photo.kmq with 8 colours: 0.2 to 1.5 bits per pixel on
                                 photos (exactly 3 with --coding raw)
  kmq encode photo.jpg -k auto --min-psnr 32    the fewest colours that reach 32 dB
  kmq info photo.kmq --json      show the header, palette and bits per pixel
  kmq decode photo.kmq -o out.png
  kmq encode photo.jpg -k 16 -o small.png    a 16-colour palette PNG, as pngquant writes
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``kmq`` command."""
    parser: argparse.ArgumentParser = _Parser(
        prog=PROG,
        description="K-means colour quantization into a small, documented image file (.kmq).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        # The ctx1 part last: .ci/run checks that the version ends "(ctx1 coder: python)" without a compiler.
        version=f"%(prog)s {kmq.__version__} (mix coder: {mix.BACKEND}) (ctx1 coder: {kmq.ctx1.BACKEND})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    reporting, verbose_reporting = _reporting_options(False), _reporting_options(True)
    batching, picture_options = _batch_options(), _picture_options()
    _encode_parser(sub, [verbose_reporting, batching])
    _decode_parser(sub, [verbose_reporting, batching])
    _info_parser(sub)
    _demo_parser(sub, [reporting])
    _compare_parser(sub, [reporting, picture_options])
    _sweep_parser(sub, [reporting, picture_options])
    _view_parser(sub, [reporting])
    _gallery_parser(sub, [reporting])
    _completion_parser(sub)
    return parser


_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # each _*_parser adds one

LIMIT_HELP = f"refuse images with more pixels than this, or 'none' (default: {container.DEFAULT_MAX_PIXELS:,})"
FORCE_HELP = (
    "replace an existing output that kmq wrote, once the new one is complete (a file kmq did not write: only "
    "when -o names it; never a device, FIFO or folder)"
)


def _command(
    sub: _Commands,
    name: str,
    help: str,
    example: str,
    parents: Sequence[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name, help=help, description=help, epilog=f"example:\n  {example}", parents=list(parents),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.set_defaults(command_parser=p)  # so an unknown option gets this command's usage
    return p


def _reporting_options(verbose: bool) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("reporting")
    group.add_argument("--json", action="store_true", help="print one JSON document instead of text, for scripts")
    loudness = group.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    if verbose:
        loudness.add_argument("-v", "--verbose", action="store_true", help="also say what is found and skipped")
    return parent


def _input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frame",
        type=_frame,
        metavar="N",
        help="which frame of an animation (GIF, APNG, WebP) or page of a multi-page TIFF, from 1 (default: 1)",
    )
    parser.add_argument(
        "--no-colour-management",
        dest="colour_management",
        action="store_false",
        help="keep the numbers as stored instead of converting an embedded ICC profile to sRGB",
    )


def _batch_options() -> argparse.ArgumentParser:
    batching = argparse.ArgumentParser(add_help=False)
    group = batching.add_argument_group(
        "many files",
        "Several inputs, a folder, a glob or -O make a batch: a bad file is reported and the rest go on (exit 1 at "
        "the end if any failed), and kmq's outputs newer than their input are skipped as up to date, older ones kept "
        "and reported as stale.",
    )
    group.add_argument("-O", "--output-dir", metavar="DIR", help="write outputs into DIR (made if missing)")
    group.add_argument("-r", "--recursive", action="store_true", help="look in the subfolders of folder inputs")
    group.add_argument("--force", action="store_true", help=FORCE_HELP)
    group.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        metavar="N",
        help=f"worker processes for a batch (default: the CPU count, here {os.cpu_count()})",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="send the files to a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786 (needs kmq[dask])",
    )
    return batching


def _encode_parser(sub: _Commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    p = _command(
        sub,
        "encode",
        "quantize images to K colours and write .kmq files",
        "kmq encode photo.jpg -k 16 -o small.kmq\n  kmq encode photos/ -r -O kmq/ -k 16    (every image below photos/)",
        parents,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files in any format Pillow reads (PNG, JPEG, WebP, TIFF, ...), folders, glob patterns, or - "
        "for standard input",
    )
    p.add_argument(
        "-o",
        "--output",
        help="output path, for one input (default: INPUT with the suffix .kmq); an image extension (.png, .gif, "
        ".webp, ...) writes that palette image instead, as pngquant does; - for standard output (the default when "
        "INPUT is -, standard input); DIR/ with a slash for a folder, as -O",
    )
    p.add_argument(
        "--suffix",
        type=_suffix,
        default=".kmq",
        help="format of the outputs when -o names no file, by extension: .kmq (default), or .png, .gif, .webp, ... "
        "for palette images, named NAME-kmq.SUFFIX",
    )
    _quantizer_options(p)
    _input_options(p)
    p.add_argument(
        "--coding",
        type=_coding,
        default=container.DEFAULT_CODING,
        metavar=CODING_METAVAR,
        help=f"payload coding: mix (or 2, the default) = context mixing with a match model, smaller than ctx1, "
        f"{MIX_AT_K8}; where ctx1 would be smaller, ctx1 is written instead, and raw where neither would be smaller "
        f"than raw. ctx1 (or 1) = the fast context model, range-coded, {CTX1_AT_K8}; where it would not be smaller "
        "than raw, raw is written instead. raw (or 0) = exactly ceil(log2 K) bits per pixel, 3 at K=8",
    )
    p.add_argument("--max-pixels", type=_max_pixels, default=container.DEFAULT_MAX_PIXELS, help=LIMIT_HELP)
    p.set_defaults(run=cmd_encode, check=lambda args, parser=p: _check_encode_options(parser, args))


def _quantizer_options(p: argparse.ArgumentParser) -> None:
    """encode's choices of palette: K (or auto), colour space, dithering and seed."""
    p.add_argument(
        "-k",
        type=_k_or_auto,
        default=DEFAULT_K,
        metavar="K",
        help=f"palette size, 1..256 (default: {DEFAULT_K}), or 'auto' with --min-psnr; what a pixel costs "
        "depends on the coding: exactly ceil(log2 K) bits raw, usually far less with mix or ctx1 (see --coding)",
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
        default=DEFAULT_SPACE,
        help="where to cluster: perceptual (the default: Oklab distance with a share of RGB's, each entry its "
        "cluster's mean colour; looks best), rgb (exact MSE: best PSNR) or oklab",
    )
    _dither_option(p)
    p.add_argument(
        "--palette",
        metavar="NAME|FILE",
        help="remap to this palette exactly, in its order, instead of fitting one: a built-in name "
        f"({', '.join(BUILTIN)}), a GIMP .gpl, an Adobe .act, a text file of hex colours, or an image whose "
        "colours are taken",
    )
    p.add_argument(
        "--keep",
        metavar="COLOURS",
        help="colours the fitted palette must contain, e.g. --keep '#ffffff,#e30613' (or a palette name or file)",
    )
    p.add_argument(
        "--shared-palette",
        action="store_true",
        help="in a batch: fit one palette on all inputs together, so every output has the same palette",
    )
    p.add_argument("--seed", type=_seed, default=0, help="k-means++ seed; same seed, same file (default: 0)")


def _dither(text: str) -> float | str:
    if text == "ordered":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"dither must be a strength from 0 to 1 or 'ordered', got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"dither strength must be from 0 to 1, got {value}")
    return value


def _dither_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dither",
        type=_dither,
        nargs="?",
        const=DEFAULT_DITHER_STRENGTH,
        default=0.0,
        metavar="STRENGTH|ordered",
        help=f"dither: alone (strength {DEFAULT_DITHER_STRENGTH}) or with a strength up to 1, edge-aware "
        "Floyd-Steinberg error diffusion (smooth gradients, not edges or texture); 'ordered' for Bayer "
        "dithering, which does not shimmer in animations",
    )


def _decode_parser(sub: _Commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    p = _command(
        sub,
        "decode",
        "decode .kmq files to images",
        "kmq decode photo.kmq -o photo.webp\n  kmq decode kmq/ -r -O png/    (every .kmq file below kmq/)",
        parents,
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help=".kmq files, folders, glob patterns, or - for standard input"
    )
    p.add_argument(
        "-o",
        "--output",
        help="output image, for one input; format from its extension (default: NAME-kmq.png beside NAME.kmq, a "
        "name no original has); - for standard output, in the --suffix format (PNG unless given); DIR/ for a folder",
    )
    p.add_argument(
        "--suffix",
        type=_suffix,
        default=".png",
        help="format of the outputs when -o names no file (NAME-kmq.SUFFIX, or -o -), by extension: .png "
        "(default), .webp, .tiff, ...",
    )
    p.add_argument("--max-pixels", type=_max_pixels, default=container.DEFAULT_MAX_PIXELS, help=LIMIT_HELP)
    p.set_defaults(run=cmd_decode, check=lambda args, parser=p: _check_batch_options(parser, args))


def _info_parser(sub: _Commands) -> None:
    p = _command(sub, "info", "show a .kmq file's header, palette and true bits per pixel", "kmq info photo.kmq --json")
    p.add_argument("file", help="a .kmq file (checked completely, checksum included)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--palette-image", metavar="PATH", help="also draw the palette as swatches into an image, e.g. swatch.png"
    )
    p.add_argument("--force", action="store_true", help="replace an existing --palette-image file")
    p.add_argument("--max-pixels", type=_max_pixels, default=container.DEFAULT_MAX_PIXELS, help=LIMIT_HELP)
    p.set_defaults(run=cmd_info)


def _port(text: str) -> int:
    return _integer(text, "port", 0, 65535)


def _web_inputs(p: argparse.ArgumentParser) -> None:
    """The inputs of ``view`` and ``gallery``: kmq files, found as a batch finds them."""
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="a .kmq file, a folder of them, or a glob pattern")
    p.add_argument("-r", "--recursive", action="store_true", help="look in the subfolders of folder inputs")
    p.add_argument("--max-pixels", type=_max_pixels, default=container.DEFAULT_MAX_PIXELS, help=LIMIT_HELP)


def _web_command(name: str) -> Any:
    """``kmq view``'s or ``kmq gallery``'s runner; cli/web.py (http.server, webbrowser) loads only when it runs."""

    def run(args: argparse.Namespace) -> Any:
        from . import web

        return getattr(web, name)(args)

    return run


def _view_parser(sub: _Commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    p = _command(
        sub,
        "view",
        "show .kmq files in your web browser: serves them and the viewer on 127.0.0.1 until Ctrl-C",
        "kmq view photo.kmq\n  kmq view kmq/ -r --no-open    (print the address only)",
        parents,
    )
    _web_inputs(p)
    p.add_argument("--port", type=_port, default=0, help="the port to listen on (default: a free one, printed)")
    p.add_argument("--no-open", dest="open", action="store_false", help="do not open a browser, print the address")
    p.set_defaults(run=_web_command("cmd_view"))


def _gallery_parser(sub: _Commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    p = _command(
        sub,
        "gallery",
        "write a static web site of .kmq files: the files, the viewer and an index page any web server can host",
        "kmq gallery kmq/ -o site/    (then e.g. python3 -m http.server -d site)",
        parents,
    )
    _web_inputs(p)
    p.add_argument("-o", "--output", required=True, metavar="SITE", help="the folder to write (made; must be new)")
    p.add_argument("--title", help="the index page's title (default: the folder's name and the file count)")
    p.add_argument("--force", action="store_true", help="replace a gallery kmq wrote at SITE (never another folder)")
    p.set_defaults(run=_web_command("cmd_gallery"))


def _demo_parser(sub: _Commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    p = _command(
        sub,
        "demo",
        "encode and decode a built-in sample photo, report sizes and quality",
        "kmq demo /tmp/kmq-demo",
        parents,
    )
    p.add_argument("outdir", nargs="?", help="folder for the outputs (default: ./kmq-demo, or -2, -3... if taken)")
    p.add_argument("-k", type=_k, default=DEFAULT_K, metavar="K", help=f"palette size, 1..256 (default: {DEFAULT_K})")
    p.add_argument("--seed", type=_seed, default=0, help="k-means++ seed (default: 0)")
    p.add_argument("--force", action="store_true", help="replace earlier demo outputs in OUTDIR")
    p.set_defaults(run=cmd_demo)


def _k_list_option(p: argparse.ArgumentParser, flags: list[str], default: Sequence[int], help: str) -> None:
    shown = ",".join(map(str, default))
    p.add_argument(
        *flags, type=_k_list, nargs="+", default=[list(default)], metavar="K", help=f"{help} (default: {shown})"
    )


def _picture_options() -> argparse.ArgumentParser:
    picture_options = argparse.ArgumentParser(add_help=False)
    picture_options.add_argument("--seed", type=_seed, default=0, help="k-means++ seed (default: 0)")
    picture_options.add_argument(
        "--space", choices=SPACES, default=DEFAULT_SPACE, help=f"colour space to cluster in (default: {DEFAULT_SPACE})"
    )
    _dither_option(picture_options)
    picture_options.add_argument("--force", action="store_true", help="replace existing outputs")
    picture_options.add_argument(
        "--max-pixels", type=_max_pixels, default=container.DEFAULT_MAX_PIXELS, help=LIMIT_HELP
    )
    _input_options(picture_options)
    return picture_options


def _compare_parser(sub: _Commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    p = _command(
        sub,
        "compare",
        "one picture: the original beside the result at each K, with palettes, sizes and PSNR",
        "kmq compare photo.jpg -k 4 16 64 -o compare.png",
        parents,
    )
    p.add_argument("input", help="an image file")
    _k_list_option(p, ["-k"], (4, 16, 64), "palette sizes, as -k 4 16 64 or -k 4,16,64")
    p.add_argument(
        "-o", "--output", default="compare.png", help="the picture (default: compare.png); .png, .webp, .jpg"
    )
    p.add_argument(
        "--coding", type=_coding, default=container.DEFAULT_CODING, metavar=CODING_METAVAR, help="payload coding"
    )
    p.add_argument("--width", type=_width, default=480, metavar="PX", help="widest panel, 16..2048 (default: 480)")
    p.set_defaults(run=picture_cli.cmd_compare, check=_flatten_k)


def _sweep_parser(sub: _Commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    p = _command(
        sub,
        "sweep",
        "file size and PSNR at every K for each payload coding: the trade-off curve and its elbow",
        "kmq sweep photo.jpg --k 2,4,8,16,32,64,128,256 -o sweep.png --csv sweep.csv",
        parents,
    )
    p.add_argument("input", help="an image file")
    _k_list_option(p, ["-k", "--k"], pictures.DEFAULT_KS, "palette sizes, as --k 2,4,8 or -k 2 4 8")
    p.add_argument("-o", "--output", default="sweep.png", help="the plot, a PNG (default: sweep.png); needs kmq[plot]")
    p.add_argument("--csv", metavar="PATH", help="also write the figures as CSV")
    p.add_argument("--no-plot", action="store_true", help="no plot (so no matplotlib): the table, --csv and --json")
    p.set_defaults(run=picture_cli.cmd_sweep, check=_flatten_k)


def _completion_parser(sub: _Commands) -> None:
    p = _command(
        sub,
        "completion",
        "print a tab-completion script for bash, zsh or fish",
        "source <(kmq completion bash)    (add the line to ~/.bashrc to keep it)",
    )
    p.add_argument("shell", choices=completion.SHELLS, help="the shell to complete in")
    p.set_defaults(run=cmd_completion)


def _check_batch_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.output is not None and args.output_dir is not None:
        parser.error("-o and -O: choose one")
    if args.output is not None and args.output.endswith(("/", os.sep)):
        args.output, args.output_dir = None, args.output  # -o DIR/ names a folder, as -O DIR does
    if files.STDIO in args.inputs and len(args.inputs) > 1:
        parser.error("- (standard input) must be the only input")
    if files.STDIO in args.inputs and args.output_dir is not None:
        parser.error("- (standard input) has no name to put under -O; name the output with -o")
    to_stdout = args.output == files.STDIO or (args.output is None and args.inputs == [files.STDIO])
    if to_stdout and args.json:
        parser.error("--json and an image on standard output (-o -) cannot share it; name an output file")
    if args.output is not None and len(args.inputs) > 1:
        parser.error("-o names one output; for several inputs use -O DIR")
    if args.output is not None and Path(args.inputs[0]).is_dir():
        parser.error("-o names one output; for a folder use -O DIR")
    if args.output is not None and not Path(args.inputs[0]).exists() and glob.has_magic(args.inputs[0]):
        parser.error("-o names one output; for a glob pattern use -O DIR")
    if args.jobs is not None and args.scheduler is not None:
        parser.error("-j and --scheduler: choose one (the scheduler's workers do the work)")


def _check_encode_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    _check_batch_options(parser, args)
    if args.k == "auto" and args.min_psnr is None:
        parser.error("-k auto needs --min-psnr DB")
    if args.k != "auto" and args.min_psnr is not None:
        parser.error("--min-psnr goes with -k auto")


def _failure(exc: Exception) -> str:
    """The one line for a command that failed as a whole, after ``kmq: ``."""
    if isinstance(exc, (KmqError, CommandError)):
        return f"error: {exc}"
    if isinstance(exc, OSError):
        return f"error: {files.describe_os_error(exc)}"
    if isinstance(exc, ImportError):  # an optional extra is missing; the message says which
        return f"error: {exc}"
    if isinstance(exc, MemoryError):
        return "error: out of memory"
    if os.environ.get("KMQ_DEBUG"):  # a bug: still one line, with a way to see more
        raise exc
    return f"internal error: {type(exc).__name__}: {exc} (set KMQ_DEBUG=1 for a traceback)"


def _say_backend_choice(words: list[str]) -> None:
    """A bad ``KMQ_CTX1_BACKEND`` as one warning line of the command's, before any work or worker.

    Said before the arguments are parsed, so that ``kmq --version``, which names the coder, says it too.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctx1.warn_backend_choice()
    options = words[: words.index("--")] if "--" in words else words
    for warning in caught:
        if not {"-q", "--quiet"} & set(options):
            print(f"{PROG}: warning: {warning.message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kmq`` command; returns the exit status (0, 1 error, 2 usage, 128 + N stopped by signal N)."""
    for stream in (sys.stdout, sys.stderr):
        # File names that are not valid UTF-8 are printed escaped rather than stopping a batch.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    parser = build_parser()
    _say_backend_choice(list(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if hasattr(args, "check"):
        args.check(args)
    try:
        with signals.handled():
            status = args.run(args)
    except BrokenPipeError:
        # The reader (e.g. `| head`) has gone: stay quiet, as a Unix filter does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM or SIGHUP
        return signals.report(interrupt)
    except Exception as exc:
        message = _failure(exc)
        print(f"{PROG}: {message}", file=sys.stderr)
        if getattr(args, "json", False):
            # A script reading stdout still gets one JSON document.
            print(json.dumps(failure_document(args.command, message.removeprefix("error: ")), indent=2))
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
