"""A local fake of the Slack Web API, for tests that drive the real ``slack_sdk`` WebClient over HTTP.

Speaks the methods the provider uses: ``auth.test``, ``chat.postMessage``, ``files.getUploadURLExternal``,
the upload URL it hands out, and ``files.completeUploadExternal``. Checks the Bearer token like Slack does
(HTTP 200 with ``{"ok": false, "error": "invalid_auth"}``), records every request, and can answer the next
calls of a method with a scripted failure (e.g. 429 with ``Retry-After``).

Use the fixtures from a test module::

    from tests.notifications.slack_api_server import slack_api_server, slack_connection  # noqa: F401

``slack_connection`` sets ``AIRFLOW_CONN_SLACK_API_DEFAULT`` (conn type ``slack``, token as password,
``base_url`` extra) to point at the server, so the stock ``SlackHook`` talks to it.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

VALID_TOKEN = "xoxb-snowstorm-test-token"
CHANNEL_IDS = {"#finops-alerts": "C0FINOPS01", "finops-alerts": "C0FINOPS01"}


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the server received; ``params`` merges query string, form and JSON body."""

    method: str
    """Web API method (``chat.postMessage``) or ``upload`` for the file upload URL."""
    path: str
    headers: dict[str, str]
    params: dict[str, Any]
    body: bytes


@dataclass
class ScriptedResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlackApi:
    """The server's state: recorded requests, accepted tokens and scripted failures."""

    def __init__(self, valid_tokens: set[str] | None = None) -> None:
        self.valid_tokens = set(valid_tokens or {VALID_TOKEN})
        self.requests: list[RecordedRequest] = []
        self.delivered: list[tuple[str, dict[str, Any]]] = []
        """What Slack accepted and users see: (method, params) of successful posts and completed uploads."""
        self._scripted: dict[str, list[ScriptedResponse]] = {}
        self._failing_calls: dict[tuple[str, int], ScriptedResponse] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- test API -------------------------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Slack API server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """What to give ``WebClient(base_url=...)`` or the connection's ``base_url`` extra."""
        return f"{self.root_url}/api/"

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        error: str = "ratelimited",
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with ``status`` (default 429, ``Retry-After: 0``)."""
        if headers is None:
            headers = {"Retry-After": "0"} if status == 429 else {}
        with self._lock:
            self._scripted.setdefault(method, []).extend(
                ScriptedResponse(status, {"ok": False, "error": error}, headers) for _ in range(times)
            )

    def fail_call(self, method: str, number: int, *, error: str = "fatal_error") -> None:
        """Refuse the ``number``-th call (1-based, counted over the server's life) of ``method``: HTTP 200 with
        ``{"ok": false, "error": error}``, which slack_sdk raises as ``SlackApiError`` and does not retry."""
        with self._lock:
            self._failing_calls[(method, number)] = ScriptedResponse(200, {"ok": False, "error": error})

    def calls(self, method: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method]

    def start(self) -> FakeSlackApi:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-slack-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    # -- request handling -----------------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> ScriptedResponse:
        with self._lock:
            self.requests.append(request)
            number = sum(1 for r in self.requests if r.method == request.method)
            failing = self._failing_calls.pop((request.method, number), None)
            if failing is not None:
                return failing
            scripted = self._scripted.get(request.method)
            if scripted:
                return scripted.pop(0)
        if request.method == "upload":
            return ScriptedResponse(200, {"ok": True, "length": len(request.body)})
        authorization = request.headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ").strip()
        if token not in self.valid_tokens:
            error = "not_authed" if not token else "invalid_auth"
            return ScriptedResponse(200, {"ok": False, "error": error})
        answer = getattr(self, "_" + request.method.replace(".", "_"), None)
        if answer is None:
            return ScriptedResponse(200, {"ok": False, "error": "unknown_method"})
        return ScriptedResponse(200, answer(request.params))

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "team": "snowstorm", "user": "snowstorm-bot", "bot_id": "B0SNOW"}

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("text") and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = f"1700000000.{next(self._ids):06d}"
        channel_id = CHANNEL_IDS.get(channel, channel)
        self.delivered.append(("chat.postMessage", {**params, "_ts": ts}))
        return {
            "ok": True,
            "channel": channel_id,
            "ts": ts,
            "message": {"text": params.get("text"), "ts": ts},
        }

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        posted = {(message.get("channel"), message.get("ts")) for message in self.messages()}
        if (params.get("channel"), params.get("ts")) not in posted:
            return {"ok": False, "error": "message_not_found"}
        self.delivered.append(("chat.update", params))
        return {"ok": True, "channel": params["channel"], "ts": params["ts"], "text": params.get("text")}

    def messages(self) -> list[dict[str, Any]]:
        """``channel`` (id) and ``ts`` of every message posted so far."""
        return [
            {"channel": CHANNEL_IDS.get(str(params["channel"]), params["channel"]), "ts": params["_ts"]}
            for method, params in self.delivered
            if method == "chat.postMessage" and "_ts" in params
        ]

    def _files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("filename") or not params.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        return {"ok": True, "upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        files = json.loads(params.get("files") or "[]")
        if not files:
            return {"ok": False, "error": "invalid_arguments"}
        self.delivered.append(("files.completeUploadExternal", params))
        return {
            "ok": True,
            "files": [{"id": f["id"], "title": f.get("title"), "name": f.get("title")} for f in files],
        }


def _handler_for(api: FakeSlackApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type == "application/json" and body:
                params.update(json.loads(body))
            elif (
                content_type == "application/x-www-form-urlencoded" and body and url.path.startswith("/api/")
            ):
                params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
            if url.path.startswith("/api/"):
                method = url.path.removeprefix("/api/")
            elif url.path.startswith("/upload/"):
                method = "upload"  # raw file bytes (urllib labels them as a form)
            else:
                method = url.path
            request = RecordedRequest(
                method=method,
                path=url.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                params=params,
                body=body,
            )
            response = api.handle(request)
            payload = json.dumps(response.body).encode()
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def slack_api_server() -> Iterator[FakeSlackApi]:
    """A running fake Slack Web API on 127.0.0.1 and a free port, stopped after the test."""
    api = FakeSlackApi().start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def slack_connection(slack_api_server: FakeSlackApi, monkeypatch: pytest.MonkeyPatch) -> str:
    """``slack_api_default`` pointing at the fake server with the valid token; returns the connection id."""
    set_slack_connection(monkeypatch, slack_api_server, token=VALID_TOKEN)
    return "slack_api_default"


def set_slack_connection(
    monkeypatch: pytest.MonkeyPatch,
    api: FakeSlackApi,
    *,
    token: str,
    conn_id: str = "slack_api_default",
) -> None:
    """Define an Airflow Slack connection through its ``AIRFLOW_CONN_<ID>`` JSON environment variable."""
    connection = {"conn_type": "slack", "password": token, "extra": {"base_url": api.base_url, "timeout": 5}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
