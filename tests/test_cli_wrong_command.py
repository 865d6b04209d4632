"""``kmq decode photo.png`` and ``kmq encode photo.kmq`` point at the other command, judged by the file's content."""

from __future__ import annotations

import kmq
import numpy as np
import pytest
from kmq.cli.main import main
from PIL import Image

PIXELS = np.arange(16 * 12 * 3, dtype=np.uint8).reshape(12, 16, 3)


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMQ_DEBUG", raising=False)
    return tmp_path


def one_error_line(capsys, *argv: str) -> str:
    """Run ``kmq ARGV``, which must fail with exit 1 and one line on stderr; that line."""
    capsys.readouterr()
    assert main(list(argv)) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize("name", ["photo.png", "photo.jpg", "holds-a-png.kmq", "my photo.webp"])
@pytest.mark.parametrize("extra", [[], ["--force"], ["-o", "out.png", "--force"]], ids=["", "force", "dash-o"])
def test_decoding_an_image_asks_whether_encode_was_meant(work, capsys, name, extra):
    fmt = "JPEG" if name.endswith(".jpg") else "WEBP" if name.endswith(".webp") else "PNG"
    Image.fromarray(PIXELS).save(work / name, format=fmt)
    before = (work / name).read_bytes()

    line = one_error_line(capsys, "decode", name, *extra)

    quoted = f"'{name}'" if " " in name else name
    assert line == f"kmq: error: {name}: a {fmt} image, not a kmq file: did you mean `kmq encode {quoted}`?"
    assert (work / name).read_bytes() == before
    assert sorted(p.name for p in work.iterdir()) == [name]


@pytest.mark.parametrize("name", ["photo.kmq", "a b.kmq"])
@pytest.mark.parametrize("extra", [[], ["--force"]], ids=["", "force"])
def test_encoding_a_kmq_file_onto_itself_asks_whether_decode_was_meant(work, capsys, name, extra):
    data = kmq.encode(PIXELS, 4)
    (work / name).write_bytes(data)

    line = one_error_line(capsys, "encode", name, *extra)

    quoted = f"'{name}'" if " " in name else name
    assert (
        line
        == f"kmq: error: {name}: already a kmq file: did you mean `kmq decode {quoted}`? (to re-encode it, give -o)"
    )
    assert (work / name).read_bytes() == data


def test_a_kmq_file_is_still_re_encoded_into_another_output(work, capsys):
    (work / "photo.kmq").write_bytes(kmq.encode(PIXELS, 16))

    assert main(["encode", "photo.kmq", "-o", "smaller.kmq", "-k", "2"]) == 0
    assert kmq.container.loads((work / "smaller.kmq").read_bytes())[0].k == 2


def test_a_png_named_kmq_keeps_the_overwrite_rule_not_the_hint(work, capsys):
    Image.fromarray(PIXELS).save(work / "photo.kmq", format="PNG")  # an image: encode is right, the output is not

    line = one_error_line(capsys, "encode", "photo.kmq")

    assert "overwrite the input" in line and "did you mean" not in line


def test_a_kmq_file_named_png_keeps_the_overwrite_rule_not_the_hint(work, capsys):
    (work / "pic.png").write_bytes(kmq.encode(PIXELS))  # a kmq file: decode is right, the output is not

    # (Without -o it decodes to pic-kmq.png: decoded images never take an input's name.)
    line = one_error_line(capsys, "decode", "pic.png", "-o", "pic.png")

    assert "overwrite the input" in line and "did you mean" not in line


def test_decoding_a_file_that_is_neither_says_what_is_wrong_with_it(work, capsys):
    (work / "notes.txt").write_bytes(b"hello, not an image")

    line = one_error_line(capsys, "decode", "notes.txt", "-o", "out.png")

    assert "not a kmq file" in line and "did you mean" not in line
