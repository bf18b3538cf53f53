"""The chat service: a Starlette app over a durable store and a backend (`create_app`)."""

from ._app import MAX_BODY_BYTES, create_app
from ._config import DEFAULT_STORE_URL, BackendConfig, backend_from_env
from ._request import ChatRequest, RequestJSONError, parse_chat_request
from ._turns import CHAT_INTENT, CLOSING_EVENT_TYPES, TurnRunner

__all__ = [
    "CHAT_INTENT",
    "CLOSING_EVENT_TYPES",
    "DEFAULT_STORE_URL",
    "MAX_BODY_BYTES",
    "BackendConfig",
    "ChatRequest",
    "RequestJSONError",
    "TurnRunner",
    "backend_from_env",
    "create_app",
    "parse_chat_request",
]
