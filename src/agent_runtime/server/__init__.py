"""The chat service: a Starlette app over a durable store and a backend (`create_app`),
authenticated, tenant-scoped and safe to expose (`ServerSettings`, `ApiKeys`)."""

from ._app import MAX_BODY_BYTES, create_app
from ._auth import API_KEYS_ENV, LOCAL_PRINCIPAL, ApiKeys, Authenticate, Principal
from ._config import DEFAULT_STORE_URL, BackendConfig, backend_from_env
from ._errors import (
    BodyTooLargeError,
    HostNotAllowedError,
    HTTPRequestError,
    OriginNotAllowedError,
    QuotaExceededError,
    RequestTimeoutError,
    TooManyTurnsError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from ._gate import principal_of
from ._ids import TurnRef, parse_execution_id
from ._logging import LineFormatter, configure_logging
from ._protocol import ConnectionGuard, default_max_connections, uvicorn_config
from ._redact import StreamScrubber, TurnRedactor
from ._request import ChatRequest, RequestJSONError, parse_chat_request
from ._settings import ServerSettings
from ._turns import CHAT_INTENT, CLOSING_EVENT_TYPES, TurnRunner

__all__ = [
    "API_KEYS_ENV",
    "CHAT_INTENT",
    "CLOSING_EVENT_TYPES",
    "DEFAULT_STORE_URL",
    "LOCAL_PRINCIPAL",
    "MAX_BODY_BYTES",
    "ApiKeys",
    "Authenticate",
    "BackendConfig",
    "BodyTooLargeError",
    "ChatRequest",
    "ConnectionGuard",
    "HTTPRequestError",
    "HostNotAllowedError",
    "LineFormatter",
    "OriginNotAllowedError",
    "Principal",
    "QuotaExceededError",
    "RequestJSONError",
    "RequestTimeoutError",
    "ServerSettings",
    "StreamScrubber",
    "TooManyTurnsError",
    "TurnRedactor",
    "TurnRef",
    "TurnRunner",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "backend_from_env",
    "configure_logging",
    "create_app",
    "default_max_connections",
    "parse_chat_request",
    "parse_execution_id",
    "principal_of",
    "uvicorn_config",
]
