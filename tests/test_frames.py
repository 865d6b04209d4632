"""Animations and multi-page files: one frame is encoded, the user is told which, and ``--frame N`` chooses."""

from __future__ import annotations

import io
import json
import warnings

import kmq
import numpy as np
import pytest
from kmq.batch import EncodeOptions, encode_job
from kmq.cli.main import main
from kmq.images import load, load_image
from PIL import Image

# Three 8 x 6 frames, each a different pair of colours (so no writer merges two of them).
COLOURS = [((255, 0, 0), (0, 0, 0)), ((0, 255, 0), (255, 255, 255)), ((0, 0, 255), (255, 255, 0))]
FRAMES = [np.array([[a if (x + y) % 2 else b for x in range(8)] for y in range(6)], np.uint8) for a, b in COLOURS]

ANIMATIONS = {
    "GIF": {"duration": 100, "loop": 0},
    "PNG": {"duration": 100},  # APNG
    "WEBP": {"lossless": True, "duration": 100},
    "TIFF": {},  # pages
}


def animation(fmt: str, frames: list[np.ndarray] = FRAMES) -> bytes:
    first, *rest = (Image.fromarray(frame) for frame in frames)
    buffer = io.BytesIO()
    first.save(buffer, format=fmt, save_all=True, append_images=rest, **ANIMATIONS[fmt])
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", sorted(ANIMATIONS))
def test_the_first_frame_is_kept_and_the_others_are_reported(fmt):
    loaded = load(io.BytesIO(animation(fmt)))
    assert np.array_equal(loaded.pixels, FRAMES[0])
    assert loaded.notes == ("kept frame 1 of 3 (choose with --frame N)",)


@pytest.mark.parametrize("fmt", sorted(ANIMATIONS))
@pytest.mark.parametrize("frame", [1, 2, 3])
def test_frame_n_chooses_the_frame(fmt, frame):
    loaded = load(io.BytesIO(animation(fmt)), frame=frame)
    assert np.array_equal(loaded.pixels, FRAMES[frame - 1])
    assert loaded.notes == ()


@pytest.mark.parametrize("frame", [0, 4, 100])
def test_a_frame_out_of_range_is_an_error_naming_the_range(frame):
    expected = rf"anim\.gif: frame {frame} is out of range: the image has 3 frames, 1\.\.3"
    with pytest.raises(kmq.ParameterError, match=expected):
        load(io.BytesIO(animation("GIF")), name="anim.gif", frame=frame)


def test_a_still_image_has_one_frame():
    buffer = io.BytesIO()
    Image.fromarray(FRAMES[1]).save(buffer, format="PNG")
    assert np.array_equal(load(io.BytesIO(buffer.getvalue()), frame=1).pixels, FRAMES[1])
    assert load(io.BytesIO(buffer.getvalue())).notes == ()
    with pytest.raises(kmq.ParameterError, match=r"frame 2 is out of range: the image has 1 frame$"):
        load(io.BytesIO(buffer.getvalue()), frame=2)


def test_load_image_gives_the_note_as_a_warning():
    with pytest.warns(kmq.KmqWarning, match="kept frame 1 of 3"):
        load_image(io.BytesIO(animation("GIF")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(io.BytesIO(animation("GIF")), frame=2)


def test_encode_job_reports_the_note_and_encodes_the_chosen_frame():
    data = animation("WEBP")
    outcome = encode_job(data, "anim.webp", EncodeOptions(quantizer=kmq.QuantizeOptions(k=4)))
    assert outcome.info["notes"] == ["kept frame 1 of 3 (choose with --frame N)"]
    chosen = encode_job(data, "anim.webp", EncodeOptions(quantizer=kmq.QuantizeOptions(k=4), frame=3))
    assert chosen.info["notes"] == [] and np.array_equal(kmq.decode(chosen.content), FRAMES[2])
    refused = encode_job(data, "anim.webp", EncodeOptions(quantizer=kmq.QuantizeOptions(k=4), frame=9))
    assert refused.content is None and "frame 9 is out of range" in refused.error


@pytest.fixture
def gif(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "anim.gif"
    path.write_bytes(animation("GIF"))
    return path


def test_cli_warns_in_one_line(gif, capsys):
    assert main(["encode", str(gif), "-k", "4"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"kmq: warning: {gif}: kept frame 1 of 3 (choose with --frame N)"]
    assert "anim.kmq" in out


def test_cli_quiet_hides_the_warning(gif, capsys):
    assert main(["encode", str(gif), "-k", "4", "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_cli_frame_chooses_and_json_has_no_note(gif, capsys):
    assert main(["encode", str(gif), "-k", "4", "--frame", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["files"][0]["notes"] == []
    assert np.array_equal(kmq.read(gif.with_suffix(".kmq")), FRAMES[1])


def test_cli_frame_out_of_range_is_one_line_and_writes_nothing(gif, capsys):
    assert main(["encode", str(gif), "--frame", "7"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"kmq: error: {gif}: frame 7 is out of range: the image has 3 frames, 1..3"]
    assert not gif.with_suffix(".kmq").exists()


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_cli_frame_must_be_a_positive_integer(gif, capsys, value):
    with pytest.raises(SystemExit) as stop:
        main(["encode", str(gif), "--frame", value])
    assert stop.value.code == 2 and "frame must be" in capsys.readouterr().err


def test_sweep_and_compare_take_the_frame(gif, capsys):
    assert main(["sweep", str(gif), "-k", "2,4", "--frame", "3", "--no-plot", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["rows"][0]["psnr"] is None  # two colours at K=2: exact
    assert main(["compare", str(gif), "-k", "2", "-o", "c.png"]) == 0
    assert "kept frame 1 of 3" in capsys.readouterr().err
