"""Fixtures of the dialect tests: Node with the npm clients, and servers to point them at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.conftest import serving

from .node import ensure_clients
from .static_app import static_app


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` executable, `tests/js` installed from its lockfile."""
    return ensure_clients()


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    """The fixed logs of logs.py served through the dialect bodies."""
    with serving(static_app()) as url:
        yield url
