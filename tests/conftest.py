"""Shared fixtures, hypothesis profiles and strategies."""

from __future__ import annotations

import os
from pathlib import Path

import kmq
import pytest
from helpers import gradient, save_png
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"

# "default" keeps the everyday run to seconds; KMQ_THOROUGH=1 selects the long profile.
settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("thorough" if os.environ.get("KMQ_THOROUGH") else "default")


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared image corpus; tests that use it skip when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary working folder holding ``grad.png`` and ``good.kmq`` (an 8-colour encoding of it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMQ_DEBUG", raising=False)
    save_png(tmp_path / "grad.png", gradient())
    (tmp_path / "good.kmq").write_bytes(kmq.encode(gradient(), 8))
    return tmp_path
