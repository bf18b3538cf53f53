"""The two run loops (ORIGINAL §4): `run_agent_task`, the adapter-driven control loop, and
`run_agent_task_stream`, the backend streaming loop with sessions; `summarize_agent_task_run`.
"""

from ._stream_loop import run_agent_task_stream
from ._task_loop import run_agent_task, summarize_agent_task_run

__all__ = ["run_agent_task", "run_agent_task_stream", "summarize_agent_task_run"]
