"""Every runnable code block of README.md and docs/*.md runs as written and prints what its
`output` block says: against the echo backend, llm-katan for blocks marked `model`, and a
fresh folder per page for stores (see tests/docs/blocks.py for the flags)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.blocks import parse, run, unknown_flags
from tests.katan import running_katan

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE_PAGES = [p for p in PAGES if any(b.runs for b in parse(p))]
MODEL = "docs-model"


@pytest.fixture(scope="module")
def model_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One llm-katan for the module's `model` blocks."""
    with running_katan(tmp_path_factory.mktemp("katan"), name=MODEL) as base:
        yield {
            "OPENAI_BASE_URL": f"{base}/v1",
            "OPENAI_API_KEY": "docs-key",
            "OPENAI_MODEL": MODEL,
        }


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: p.name)
def test_every_runnable_block_runs_as_written(
    page: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    blocks = [b for b in parse(page) if b.runs]
    needs_model = any("model" in b.flags for b in blocks)
    env = request.getfixturevalue("model_env") if needs_model else None
    problems = [p for b in blocks if (p := run(b, tmp_path, env)) is not None]
    assert not problems, "\n\n".join(problems)


def test_the_readme_runs_its_examples_and_checks_their_output() -> None:
    """A guard on the runner itself: the README's Python examples are runnable and some have
    an output block, so a parser that found nothing could not pass unnoticed."""
    blocks = parse(ROOT / "README.md")
    python = [b for b in blocks if b.language == "python" and b.runs]
    assert len(python) >= 4
    assert sum(b.expected is not None for b in blocks) >= 2
    assert any(b.language == "sh" and b.runs for b in blocks)
    assert any("no-run" in b.flags for b in blocks)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_block_has_an_unknown_flag(page: Path) -> None:
    bad = {b.where(): unknown_flags(b) for b in parse(page) if unknown_flags(b)}
    assert not bad


SAMPLE = """# a page

```python
print("one")
```

```text output
one
```

```python no-run
raise SystemExit("an illustration: never run")
```

```python
print("took 0.42 s")
```

```output
took ... s
```
"""


def test_the_runner_runs_blocks_and_checks_outputs(tmp_path: Path) -> None:
    blocks = parse(tmp_path / "page.md", SAMPLE)
    assert [(b.line, b.runs, b.expected) for b in blocks] == [
        (3, True, "one"),
        (11, False, None),
        (15, True, "took ... s"),
    ]
    assert [run(b, tmp_path) for b in blocks if b.runs] == [None, None]


@pytest.mark.parametrize(
    ("page", "complaint"),
    [
        ("```python\nraise SystemExit(3)\n```\n", "page.md:1: exited 3"),
        ("```python\nprint('two')\n```\n\n```text output\none\n```\n", "something else"),
        ("```sh\nfalse\n```\n", "page.md:1: exited 1"),
        ("```sh\nagent-runtime runs show nope --store memory:\n```\n", "does not exist"),
    ],
)
def test_a_broken_block_is_reported_with_its_line(
    tmp_path: Path, page: str, complaint: str
) -> None:
    (block,) = [b for b in parse(tmp_path / "page.md", page) if b.runs]
    problem = run(block, tmp_path)
    assert problem is not None and complaint in problem
