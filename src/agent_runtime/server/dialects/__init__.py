"""Chat-frontend dialects over a turn's durable stream log: the Vercel AI SDK UI message stream
(v1) and AG-UI, each a pure encoder that resumes from any cursor without gap or duplicate."""

from ._bodies import FOLD_CACHE, FoldCache, TurnLog, agui_body, resume_state, vercel_body
from ._interrupts import InterruptRefusal, check_resume, open_interrupts, refusal_body
from ._requests import (
    AguiResume,
    AguiRunInput,
    DialectJSONError,
    UiChatRequest,
    parse_run_agent_input,
    parse_ui_chat_request,
)
from ._timeline import ClosingKind, PartKind, PartSink, Timeline, TimelineState, closing_kind
from .agui import AGUI_HEADERS, AguiStream, interrupts_for
from .vercel import UI_MESSAGE_STREAM_HEADERS, VERCEL_DONE, VercelStream

__all__ = [
    "AGUI_HEADERS",
    "FOLD_CACHE",
    "UI_MESSAGE_STREAM_HEADERS",
    "VERCEL_DONE",
    "AguiResume",
    "AguiRunInput",
    "AguiStream",
    "ClosingKind",
    "DialectJSONError",
    "FoldCache",
    "InterruptRefusal",
    "PartKind",
    "PartSink",
    "Timeline",
    "TimelineState",
    "TurnLog",
    "UiChatRequest",
    "VercelStream",
    "agui_body",
    "check_resume",
    "closing_kind",
    "interrupts_for",
    "open_interrupts",
    "parse_run_agent_input",
    "parse_ui_chat_request",
    "refusal_body",
    "resume_state",
    "vercel_body",
]
