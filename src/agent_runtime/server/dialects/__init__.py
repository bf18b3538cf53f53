"""Chat-frontend dialects over a turn's durable stream log: the Vercel AI SDK UI message stream
(v1) and AG-UI, each a pure encoder that resumes from any cursor without gap or duplicate."""

from ._bodies import TurnLog, agui_body, read_prefix, vercel_body
from ._timeline import ClosingKind, PartKind, PartSink, Timeline, closing_kind
from .agui import AGUI_HEADERS, AguiStream, interrupts_for
from .vercel import UI_MESSAGE_STREAM_HEADERS, VERCEL_DONE, VercelStream

__all__ = [
    "AGUI_HEADERS",
    "UI_MESSAGE_STREAM_HEADERS",
    "VERCEL_DONE",
    "AguiStream",
    "ClosingKind",
    "PartKind",
    "PartSink",
    "Timeline",
    "TurnLog",
    "VercelStream",
    "agui_body",
    "closing_kind",
    "interrupts_for",
    "read_prefix",
    "vercel_body",
]
