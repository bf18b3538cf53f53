"""Which task and step functions a worker process may run, by their import name.

A step crosses to an activity worker as `"<module>:<qualname>"` and its JSON `args`; the
worker runs only functions registered with it. A lambda, a nested function or a function of
`__main__` has no name another process can resolve: registering or calling one is a
`DurableValueError` at once, never a workflow waiting for an activity no worker can run.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from ..errors import DurableValueError

__all__ = [
    "function_name",
    "register_step",
    "register_task",
    "registered_step",
    "registered_task_names",
    "resolve_task",
    "step_name",
]

# shared with the workflow sandbox: `agent_runtime` is a pass-through module there
_TASKS: dict[str, Callable[..., Any]] = {}
_STEPS: dict[str, Callable[..., Any]] = {}


def function_name(fn: Any, what: str) -> str:
    """`"<module>:<qualname>"` of a module-level function; `DurableValueError` for anything
    another process could not import by that name."""
    if not callable(fn):
        raise DurableValueError(f"{what} must be a function", path=what)
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise DurableValueError(f"{what} {fn!r} has no module and name", path=what)
    name = f"{module}:{qualname}"
    if "<" in qualname:  # <lambda>, <locals>
        raise DurableValueError(
            f"{what} {name} is a lambda or a nested function; a Temporal worker can only run a "
            "module-level function (pass its inputs in args=)",
            path=what,
        )
    if module == "__main__":
        raise DurableValueError(
            f"{what} {name} is defined in __main__; define it in an importable module",
            path=what,
        )
    return name


def _check_importable(fn: Callable[..., Any], name: str, what: str) -> None:
    module, qualname = name.split(":", 1)
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        raise DurableValueError(
            f"{what} {name} cannot be imported by that name", path=what
        ) from None
    if inspect.unwrap(target) is not inspect.unwrap(fn):
        raise DurableValueError(f"{what} {name} imports as another object", path=what)


def register_task(fn: Callable[..., Any]) -> str:
    """Allow this process's workers to run `fn(ctx, *args)` as a durable task."""
    name = function_name(fn, "task_fn")
    if not inspect.iscoroutinefunction(inspect.unwrap(fn)):
        raise DurableValueError(f"task_fn {name} must be an async function", path="task_fn")
    _check_importable(fn, name, "task_fn")
    _TASKS[name] = fn
    return name


def register_step(fn: Callable[..., Any]) -> str:
    """Allow this process's activity workers to run `fn(*args)` as a step."""
    name = function_name(fn, "step fn")
    _check_importable(fn, name, "step fn")
    _STEPS[name] = fn
    return name


def registered_task_names() -> frozenset[str]:
    return frozenset(_TASKS)


def resolve_task(name: str) -> Callable[..., Any] | None:
    """The task registered as `name`, imported where the caller runs (inside the workflow
    sandbox: the sandbox's own copy of its module); None when it is not registered."""
    if name not in _TASKS:
        return None
    module, qualname = name.split(":", 1)
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


def step_name(fn: Any) -> str:
    """The name a step crosses as; `DurableValueError` unless it is registered."""
    name = function_name(fn, "step fn")
    if name not in _STEPS:
        raise DurableValueError(
            f"step fn {name} is not registered with this worker (create_worker(steps=[...]))",
            path="fn",
        )
    return name


def registered_step(name: str) -> Callable[..., Any] | None:
    return _STEPS.get(name)
