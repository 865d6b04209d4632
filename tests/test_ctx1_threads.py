"""Another thread writing to the labels while they are coded: never a crash, and Indexed keeps its own copy."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import kmq
import numpy as np
import pytest
from kmq import ctx1

# A thread flips the plane between all-0 (valid at K = 2) and all-255 while the main thread
# codes it: a coder that checks the labels and then reads them again indexes its tables with 255.
HAMMER = textwrap.dedent(
    """
    import threading
    import numpy as np
    import kmq
    from kmq import ctx1

    labels = np.zeros((256, 256), dtype=np.uint8)
    done = threading.Event()

    def hammer():
        while not done.is_set():
            labels[:] = 255
            labels[:] = 0

    thread = threading.Thread(target=hammer)
    thread.start()
    refused = 0
    try:
        for _ in range({rounds}):
            try:
                {call}
            except kmq.KmqError:
                refused += 1
    finally:
        done.set()
        thread.join()
    print("refused", refused)
    """
)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param("ctx1.encode(labels, 2)", id="ctx1.encode"),
        pytest.param("kmq.Indexed(np.zeros((2, 3), np.uint8), labels).to_bytes()", id="Indexed.to_bytes"),
    ],
)
def test_labels_written_by_another_thread_never_crash_the_coder(call):
    script = HAMMER.format(rounds=6000, call=call)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit status {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.startswith("refused")


def test_a_label_changed_between_check_and_coding_is_refused_not_coded():
    # What the coder reads is what it checks: a plane that is bad when coded is refused with the pixel.
    labels = np.zeros((4, 6), np.uint8)
    labels[2, 5] = 200
    with pytest.raises(kmq.ParameterError, match=r"label 200 >= k=2 at pixel \(5, 2\)"):
        ctx1.encode(labels, 2)


def test_labels_outside_the_palette_are_named_at_their_row_in_the_image_not_in_the_stripe():
    labels = np.zeros((4096, 2), np.uint8)
    labels[3000, 1] = 9
    with pytest.raises(kmq.ParameterError, match=r"label 9 >= k=4 at pixel \(1, 3000\)"):
        ctx1.encode(labels, 4, stripes=2)


def test_indexed_keeps_its_own_read_only_copy_of_writeable_arrays():
    palette = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    labels = np.zeros((3, 4), np.uint8)
    indexed = kmq.Indexed(palette, labels)
    labels[:] = 1
    palette[:] = 7
    assert not indexed.labels.any()
    assert indexed.palette[1].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="read-only"):
        indexed.labels[0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        indexed.palette[0, 0] = 1


def test_indexed_from_a_file_shares_the_decoded_labels_without_a_copy():
    data = kmq.Indexed(np.zeros((2, 3), np.uint8), np.eye(70, dtype=np.uint8)).to_bytes()
    _, palette, labels = kmq.container.loads(data)
    assert not labels.flags.writeable and not palette.flags.writeable
    indexed = kmq.Indexed(palette, labels)
    assert indexed.labels is labels
