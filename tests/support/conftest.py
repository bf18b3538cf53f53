"""Fixtures for the support tests: a real llm-katan echo server on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.katan import running_katan

KATAN_MODEL = "katan-chat"
KATAN_KEY = "katan-valid-key-0123"


@pytest.fixture(scope="module")
def llm_katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of an llm-katan `--backend echo` server serving model `katan-chat`."""
    yield from start_katan(tmp_path_factory)


@pytest.fixture(scope="module")
def llm_katan_keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like `llm_katan`, but only the API key `KATAN_KEY` is accepted."""
    yield from start_katan(tmp_path_factory, "--validate-keys", "--api-keys", f"openai={KATAN_KEY}")


def start_katan(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> Iterator[str]:
    """Run llm-katan (echo backend) on a free port until the generator is closed."""
    with running_katan(tmp_path_factory.mktemp("katan"), *extra, name=KATAN_MODEL) as base:
        yield base
