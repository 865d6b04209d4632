"""Equal bytes on every machine: the encoder's output does not depend on the CPU, the BLAS kernel or threads.

Each case encodes the same images in a fresh interpreter under another OpenBLAS kernel
(``OPENBLAS_CORETYPE``: what a machine without AVX2 or AVX-512 runs) and thread count, and
compares the bytes with this process's. Only kernels this CPU can run are forced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Generated photo-like images (smooth fields, edges and grain), at several K, RGB and RGBA, both spaces.
SCRIPT = r"""
import hashlib, json, sys
import numpy as np
import kmq

def photo(seed, channels):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:96, 0:128] / 96.0
    planes = [np.sin(rng.uniform(1, 6) * x + rng.uniform(0, 6) * y + rng.uniform(0, 6)) for _ in range(channels)]
    image = (np.stack(planes, axis=2) + 1) * 110 + rng.normal(0, 9, (96, 128, channels))
    image[:, 64:] += 25 * (rng.uniform(size=(1, 1, channels)) - 0.5)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if channels == 4:
        image[..., 3] = np.where(x < 0.3, 0, image[..., 3])
    return image

digests = {}
for path in sys.argv[1:]:  # Kodak photos where the corpus is present: kodim05 at K=256 moved under old kernels
    from PIL import Image
    image = np.asarray(Image.open(path).convert("RGB"))
    digests[path] = hashlib.sha256(kmq.quantize(image, 256).to_bytes()).hexdigest()
for seed, channels, space in [(1, 3, "rgb"), (3, 4, "rgb"), (4, 3, "oklab")]:
    image = photo(seed, channels)
    for k in (16, 256):
        data = kmq.quantize(image, k, space=space).to_bytes()
        digests[f"{seed}/{channels}/{space}/{k}"] = hashlib.sha256(data).hexdigest()
    if channels == 3:
        data = kmq.quantize(image, "auto", min_psnr=26, space=space).to_bytes()
        digests[f"{seed}/{channels}/{space}/auto"] = hashlib.sha256(data).hexdigest()
try:
    from threadpoolctl import threadpool_info
    kernels = sorted({info.get("architecture", "?") for info in threadpool_info() if info["user_api"] == "blas"})
except ImportError:
    kernels = []
json.dump({"digests": digests, "kernels": kernels}, sys.stdout)
"""


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def _kernels() -> list[str]:
    """OpenBLAS kernels this CPU can run, oldest first (forcing one it cannot would crash)."""
    needs = {"Prescott": "sse2", "Sandybridge": "avx", "Haswell": "avx2", "SkylakeX": "avx512f"}
    flags = _cpu_flags()
    return [name for name, flag in needs.items() if flag in flags or (name == "Prescott" and not flags)]


def _photos() -> list[str]:
    kodak = REPO.parent / "shared" / "corpus" / "kodak"
    return [str(kodak / name) for name in ("kodim05.png", "kodim08.png") if (kodak / name).is_file()]


def _run(env_changes: dict[str, str]) -> dict[str, object]:
    env = {**os.environ, **env_changes}
    command = [sys.executable, "-c", SCRIPT, *_photos()]
    out = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def reference() -> dict[str, object]:
    return _run({})


def _settings() -> list[dict[str, str]]:
    cases = []
    kernels = _kernels()
    for i, kernel in enumerate(kernels[:1] + kernels[2:3]):  # the oldest, and one with AVX2
        threads = str(1 + i % 2)
        cases.append(
            {
                "OPENBLAS_CORETYPE": kernel,
                "OPENBLAS_NUM_THREADS": threads,
                "OMP_NUM_THREADS": threads,
                "KMQ_THREADS": threads,
            }
        )
    cases.append({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "KMQ_THREADS": "1"})
    return cases


@pytest.mark.parametrize("env", _settings(), ids=lambda env: "-".join(f"{k}={v}" for k, v in env.items()))
def test_encodes_are_equal_under_every_blas_kernel_and_thread_count(reference, env):
    result = _run(env)
    assert result["digests"] == reference["digests"], f"kernels {result['kernels']} vs {reference['kernels']}"
