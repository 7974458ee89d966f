"""Shared fixtures: the built-in bookstore domain (real SQLite) and a loopback OpenAI fake.

The fake OpenAI-compatible server stands in for a vLLM/SGLang server: the only thing in these
tests that cannot run here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agentscaler.runtime import Environment, Task, with_gold_hash
from agentscaler.runtime.example import bookstore, bookstore_tasks


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def env() -> Environment:
    return await Environment.build(bookstore())


@pytest.fixture
async def tasks(env: Environment) -> list[Task]:
    """The example tasks with gold hashes from a replay of their gold calls."""
    out = []
    for task in bookstore_tasks():
        replay = await env.replay((c.name, c.arguments) for c in task.gold_calls)
        out.append(with_gold_hash(task, replay.final_hash))
    return out


# A reply is (HTTP status, assistant message) for a request body.
Script = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


@contextmanager
def serve(script: Script) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Run the server in a thread; yields its base URL and the request bodies it received."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body)
            status, message = script(body)
            payload: dict[str, Any] = (
                {
                    "id": f"chatcmpl-{len(received)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
                if status == 200
                else {"error": {"message": "slow down", "type": "rate_limit", "code": status}}
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that gave up on a slow reply (a timeout test) is not news

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def openai_server() -> Callable[[Script], AbstractContextManager[tuple[str, list[dict[str, Any]]]]]:
    """`with openai_server(script) as (base_url, requests):` runs a scripted fake server."""
    return serve
