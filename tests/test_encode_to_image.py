"""``kmq encode photo.jpg -k 16 -o out.png``: kmq's quantizer writing standard palette images, as pngquant does."""

from __future__ import annotations

import json
from pathlib import Path

import kmq
import numpy as np
import pytest
from kmq import batch
from kmq.cli.main import main
from PIL import Image


def photo(height: int = 24, width: int = 40, alpha: bool = False) -> np.ndarray:
    """A smooth RGB(A) image with many colours, so that quantization has work to do."""
    y, x = np.mgrid[0:height, 0:width]
    channels = [x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)]
    if alpha:
        channels.append(np.where(x < width // 4, 0, 255))  # a cut-out: alpha 0 or 255 only
    return np.stack(channels, axis=2).astype(np.uint8)


def pixels_of(path: Path | str, channels: int = 3) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA" if channels == 4 else "RGB"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Image.fromarray(photo()).save("photo.png")
    Image.fromarray(photo()).save("photo.jpg", quality=95)
    Image.fromarray(photo(alpha=True)).save("cutout.png")
    return tmp_path


@pytest.mark.parametrize(("name", "fmt"), [("out.png", "PNG"), ("out.gif", "GIF"), ("out.webp", "WEBP")])
def test_encode_writes_the_palette_image_kmq_decode_would(
    work: Path, capsys: pytest.CaptureFixture[str], name: str, fmt: str
) -> None:
    code, out, err = run(capsys, "encode", "photo.jpg", "-k", "16", "-o", name)

    assert (code, err) == (0, "")
    assert f"-> {name}" in out and fmt in out
    assert not Path("photo.kmq").exists()
    with Image.open(name) as image:
        assert image.format == fmt
        assert image.mode == ("RGB" if fmt == "WEBP" else "P")
    assert run(capsys, "encode", "photo.jpg", "-k", "16", "-o", "same.kmq")[0] == 0
    expected = kmq.decode(Path("same.kmq").read_bytes())
    np.testing.assert_array_equal(pixels_of(name), expected)
    assert len(np.unique(expected.reshape(-1, 3), axis=0)) <= 16


def test_encode_png_equals_decode_of_the_kmq_file(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "encode", "photo.jpg", "-k", "16", "--seed", "3", "-o", "direct.png")[0] == 0
    assert run(capsys, "encode", "photo.jpg", "-k", "16", "--seed", "3", "-o", "x.kmq")[0] == 0
    assert run(capsys, "decode", "x.kmq", "-o", "via.png")[0] == 0

    assert Path("direct.png").read_bytes() == Path("via.png").read_bytes()


def test_encode_rgba_cutout_to_gif_keeps_its_transparency(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "encode", "cutout.png", "-k", "8", "-o", "out.gif")[0] == 0

    back = pixels_of("out.gif", 4)
    clear = photo(alpha=True)[:, :, 3] == 0
    assert (back[clear][:, 3] == 0).all() and (back[~clear][:, 3] == 255).all()


def test_encode_partial_alpha_to_gif_is_one_line_and_writes_nothing(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pixels = photo(alpha=True)
    pixels[:, :, 3] = 128
    Image.fromarray(pixels).save("glass.png")

    code, _, err = run(capsys, "encode", "glass.png", "-k", "8", "-o", "out.gif")

    assert code == 1
    assert err.count("\n") == 1 and "partial alpha" in err and ".png" in err
    assert not Path("out.gif").exists()


def test_encode_batch_writes_images_with_suffix(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("in").mkdir()
    for name in ("a", "b"):
        Image.fromarray(photo(16 + len(name), 20)).save(f"in/{name}.png")

    code, _, err = run(capsys, "encode", "in", "-O", "out", "--suffix", ".png", "-k", "4")

    assert (code, err) == (0, "")
    for name in ("a", "b"):  # named as decoded images are: never an original's name
        with Image.open(f"out/{name}-kmq.png") as image:
            assert image.mode == "P" and len(image.getcolors()) <= 4


def test_encode_beside_the_inputs_never_takes_an_originals_name(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = Path("photo.png").read_bytes()

    code, _, err = run(capsys, "encode", "photo.jpg", "--suffix", ".png", "-k", "4", "--force")

    assert (code, err) == (0, "")
    assert Path("photo.png").read_bytes() == before
    with Image.open("photo-kmq.png") as image:
        assert image.mode == "P"


def test_encode_json_names_the_format(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "encode", "photo.png", "-k", "8", "-o", "out.png", "--json")

    record = json.loads(out)["files"][0]
    assert code == 0
    assert record["format"] == "PNG" and record["file_bytes"] == Path("out.png").stat().st_size
    assert record["coding"] is None and record["psnr"] > 20


def test_encode_to_a_lossy_format_warns_in_one_line(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "encode", "photo.png", "-k", "8", "-o", "out.jpg")

    assert code == 0
    assert err.splitlines() == [err.strip()] and err.startswith("kmq: warning: JPEG is lossy")


def test_encode_to_an_exact_format_does_not_warn(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "encode", "photo.png", "-k", "8", "-o", "out.webp")[2] == ""


def test_encode_to_an_unknown_extension_still_writes_kmq(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "encode", "photo.png", "-o", "out.bin")[0] == 0

    assert Path("out.bin").read_bytes()[:4] == b"\x89KMQ"


def test_encode_to_an_image_never_overwrites_its_input(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = Path("photo.png").read_bytes()

    code, _, err = run(capsys, "encode", "photo.png", "-o", "photo.png", "--force")

    assert code == 1 and "input" in err
    assert Path("photo.png").read_bytes() == before


def test_encode_job_with_output_format_returns_the_image() -> None:
    import io

    buffer = io.BytesIO()
    Image.fromarray(photo()).save(buffer, format="PNG")

    outcome = batch.encode_job(
        buffer.getvalue(), "photo.png", batch.EncodeOptions(quantizer=kmq.QuantizeOptions(k=5), output_format="PNG")
    )

    assert outcome.error is None and outcome.content is not None
    with Image.open(io.BytesIO(outcome.content)) as image:
        assert image.format == "PNG" and image.mode == "P"
    assert outcome.info["k"] == 5 and outcome.info["format"] == "PNG"
