"""Shared fixtures, hypothesis profiles and strategies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
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
