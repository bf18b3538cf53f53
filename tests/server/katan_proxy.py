"""A relay in front of llm-katan that counts what llm-katan cannot report: requests, streams
relayed to their end, and streams whose client closed them early (a stopped turn); it can
also answer the next N requests with a non-retryable upstream error, for a failing turn."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_HOP = frozenset(("host", "content-length", "connection", "transfer-encoding", "accept-encoding"))


class CountingProxy:
    """Relays every request to `upstream` (a base URL), counting chat streams."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests = 0
        self.completed = 0
        self.closed_early = 0
        self.fail_next = 0

    def app(self) -> Starlette:
        async def relay(request: Request) -> Response:
            body = await request.body()
            chat = request.url.path.endswith("/chat/completions")
            if chat:
                self.requests += 1
                if self.fail_next:
                    self.fail_next -= 1
                    error = {"message": "the model is down (injected)", "type": "invalid_request"}
                    return JSONResponse({"error": error}, status_code=400)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
            client = httpx2.AsyncClient(timeout=None)
            upstream = client.build_request(
                request.method, f"{self.upstream}{request.url.path}", content=body, headers=headers
            )
            response = await client.send(upstream, stream=True)

            async def chunks() -> Any:
                done = False
                try:
                    async for chunk in response.aiter_raw():
                        yield chunk
                    done = True
                finally:
                    if chat:
                        if done:
                            self.completed += 1
                        else:
                            self.closed_early += 1
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
                        await client.aclose()

            kept = {
                k: v
                for k, v in response.headers.items()
                if k.lower() in ("content-type", "cache-control")
            }
            return StreamingResponse(chunks(), status_code=response.status_code, headers=kept)

        return Starlette(
            routes=[Route("/{path:path}", relay, methods=["GET", "POST"])],
        )
