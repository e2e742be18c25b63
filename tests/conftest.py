"""Shared test plumbing: where the project is, and whether a Docker engine answers."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def engine_or_skip():
    """Skip (or, in CI, fail) when there is no Docker engine: CI must never skip the e2e suite."""
    from mqlab.stack import preflight
    from mqlab.errors import EngineError

    try:
        preflight.docker_client()
        preflight.check_compose()
    except EngineError as exc:
        if IN_CI:
            pytest.fail(f"CI needs a Docker engine: {exc}", pytrace=False)
        pytest.skip(f"no Docker engine: {exc}")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
