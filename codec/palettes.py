"""Palettes users choose: built-in ones by name, and palette files.

:func:`load` turns what a user names (``--palette NAME|FILE``, ``--keep COLOURS``)
into a (K, C) uint8 array, entries in the order given:

- a built-in name (:data:`BUILTIN`): ``web216``, ``gameboy``, ``pico8``,
  ``epaper7`` (the 7 inks of an ACeP colour e-paper panel), ``bw``;
- a GIMP palette (``.gpl``): ``R G B [name]`` lines after the ``GIMP Palette`` header;
- an Adobe colour table (``.act``): 256 RGB triples (768 bytes), optionally followed
  by a big-endian count of the entries used and a transparent index (772 bytes; an
  index of 0xFFFF means none, any other makes that entry fully transparent);
- a text list of hex colours (any other text file): ``#RRGGBB``, ``RRGGBB`` or
  ``#RRGGBBAA``, separated by spaces, commas or lines, ``;`` or ``//`` comments;
- an image (any format Pillow reads): its distinct colours in the order they first
  occur, row by row (at most 256);
- or, for ``--keep``, the colours themselves: ``"#ff0000,#00ff00"``.

Errors are :class:`~kmq.ParameterError` (a bad name, a bad line, too many colours)
and name the file and line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .errors import ImageError, ParameterError

__all__ = ["BUILTIN", "HEX_WORD", "MAX_ENTRIES", "load", "parse_colours", "from_image"]

#: Most entries a palette may have (the container's K limit).
MAX_ENTRIES = 256


def _web216() -> list[str]:
    steps = ["00", "33", "66", "99", "cc", "ff"]
    return [r + g + b for r in steps for g in steps for b in steps]


#: Built-in palettes by name, entries in their customary order.
BUILTIN: dict[str, list[str]] = {
    "web216": _web216(),
    # The original Game Boy's four greens, darkest first.
    "gameboy": ["0f380f", "306230", "8bac0f", "9bbc0f"],
    # PICO-8's 16 colours in its own index order.
    "pico8": [
        "000000",
        "1d2b53",
        "7e2553",
        "008751",
        "ab5236",
        "5f574f",
        "c2c3c7",
        "fff1e8",
        "ff004d",
        "ffa300",
        "ffec27",
        "00e436",
        "29adff",
        "83769c",
        "ff77a8",
        "ffccaa",
    ],
    # The seven inks of a 7-colour ACeP e-paper panel (Waveshare/Pimoroni Inky order).
    "epaper7": ["000000", "ffffff", "00ff00", "0000ff", "ff0000", "ffff00", "ff8000"],
    "bw": ["000000", "ffffff"],
}

HEX_WORD = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


def parse_colours(text: str, source: str = "colours") -> NDArray[np.uint8]:
    """Hex colours in ``text`` (``#RRGGBB`` or ``#RRGGBBAA``; spaces, commas, lines; ``;``/``//`` comments).

    Parameters
    ----------
    text : str
        The colours.
    source : str
        What messages call the text (a file name, ``"keep"``).

    Returns
    -------
    (K, 3) or (K, 4) uint8 ndarray
        Four channels if any colour gives alpha (the others are then opaque).

    Raises
    ------
    ParameterError
        Naming the source and the first word that is not a colour, or if there are none or too many.
    """
    words: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = re.split(r";|//", line, maxsplit=1)[0]
        words += [(number, w) for w in re.split(r"[\s,]+", line) if w]
    colours = []
    for number, word in words:
        if not HEX_WORD.fullmatch(word):
            raise ParameterError(f"{source}: line {number}: {word!r} is not a hex colour like #ff8000")
        digits = word.lstrip("#")
        colours.append([int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)])
    return _checked(colours, source)


def _checked(colours: list[list[int]], source: str) -> NDArray[np.uint8]:
    if not colours:
        raise ParameterError(f"{source}: no colours found")
    if len(colours) > MAX_ENTRIES:
        raise ParameterError(f"{source}: {len(colours)} colours; a palette holds at most {MAX_ENTRIES}")
    channels = max(len(c) for c in colours)
    return np.array([c + [255] * (channels - len(c)) for c in colours], dtype=np.uint8)


def _gpl(text: str, source: str) -> NDArray[np.uint8]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "GIMP Palette":
        raise ParameterError(f"{source}: a .gpl file starts with the line 'GIMP Palette'")
    colours = []
    for number, line in enumerate(lines[1:], 2):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or re.match(r"(Name|Columns)\s*:", stripped):
            continue
        fields = stripped.split()
        try:
            rgb = [int(f) for f in fields[:3]]
        except ValueError:
            rgb = []
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise ParameterError(
                f"{source}: line {number}: expected 'R G B [name]' with values 0-255, got {stripped!r}"
            )
        colours.append(rgb)
    return _checked(colours, source)


def _act(data: bytes, source: str) -> NDArray[np.uint8]:
    if len(data) not in (768, 772):
        raise ParameterError(f"{source}: an .act file has 768 or 772 bytes, this one has {len(data)}")
    table = np.frombuffer(data[:768], dtype=np.uint8).reshape(256, 3)
    if len(data) == 768:
        return np.array(table)
    count, clear = int.from_bytes(data[768:770], "big"), int.from_bytes(data[770:772], "big")
    if not 1 <= count <= 256:
        raise ParameterError(f"{source}: the entry count is {count}; it must be 1 to 256")
    if clear == 0xFFFF:
        return np.array(table[:count])
    if clear >= count:
        raise ParameterError(f"{source}: the transparent index is {clear}, beyond the {count} entries")
    entries = np.hstack([table[:count], np.full((count, 1), 255, np.uint8)])
    entries[clear, 3] = 0
    return entries


def from_image(path: Path) -> NDArray[np.uint8]:
    """The distinct colours of an image, in the order they first occur (row by row).

    Parameters
    ----------
    path : Path
        Any image Pillow reads (normalised as :func:`kmq.images.load` does).

    Returns
    -------
    (K, 3) or (K, 4) uint8 ndarray

    Raises
    ------
    ImageError
        If the file is not a readable image (or is over the pixel limit).
    ParameterError
        If it has more than 256 colours.
    """
    from .images import load

    pixels = load(path).pixels
    flat = pixels.reshape(-1, pixels.shape[2])
    colours, first = np.unique(flat, axis=0, return_index=True)
    if colours.shape[0] > MAX_ENTRIES:
        raise ParameterError(f"{path}: {colours.shape[0]} colours; a palette image may have at most {MAX_ENTRIES}")
    return np.ascontiguousarray(colours[np.argsort(first, kind="stable")])


def load(spec: str | os.PathLike[str], what: str = "palette") -> NDArray[np.uint8]:
    """The palette a user names: a built-in name, a palette file or an image.

    Parameters
    ----------
    spec : str or path
        A name in :data:`BUILTIN` or a path (``.gpl``, ``.act``, a text list of hex
        colours, or an image).
    what : str
        What messages call it (``"keep"`` for ``--keep``).

    Returns
    -------
    (K, 3) or (K, 4) uint8 ndarray
        The entries in the given order.

    Raises
    ------
    ParameterError
        For an unknown name, an unreadable file or a malformed palette.
    """
    name = str(spec)
    if name.lower() in BUILTIN:
        return parse_colours("\n".join(BUILTIN[name.lower()]), name)
    path = Path(spec)
    if not path.is_file():
        names = ", ".join(BUILTIN)
        raise ParameterError(f"{what} {name!r} is neither a file, hex colours nor a built-in palette ({names})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read the palette: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".act":
        return _act(data, str(path))
    text = _text(data)
    if suffix == ".gpl" or (text is not None and text.startswith("GIMP Palette")):
        if text is None:
            raise ParameterError(f"{path}: a .gpl file must be text")
        return _gpl(text, str(path))
    if text is not None and HEX_WORD.search(text) and "\0" not in text:
        return parse_colours(text, str(path))
    try:
        return from_image(path)
    except ImageError as exc:
        raise ParameterError(f"{path}: not a palette file (.gpl, .act, hex colours) nor an image: {exc}") from None


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
