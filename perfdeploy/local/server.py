"""The emulator's HTTP server: moto's WSGI application, patched, one request at a time, in this process."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from perfdeploy.local import patches, routes


class SerializedApp:
    """Runs one request at a time: moto's backends are plain dicts and lists, not safe for the concurrent
    deploys perfdeploy's engine makes. The response is read to the end inside the lock; a web page where
    AWS would answer an error becomes an AWS-shaped error (routes.py)."""

    def __init__(self, app: Any):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        stream, length = environ.get("wsgi.input"), int(environ.get("CONTENT_LENGTH") or 0)
        body = b"" if stream is None else stream.read() if environ.get("wsgi.input_terminated") else \
            stream.read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with self.lock:
            answer = routes.own_answer(environ)
            if answer is not None:
                return _respond(start_response, answer[0], [("Content-Type", "application/json")],
                                json.dumps(answer[1], indent=2, default=str).encode())
            seen: dict[str, Any] = {}

            def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                seen.update(status=status, headers=headers, exc_info=exc_info)
                return lambda data: None

            result = self.app(environ, remember)
            try:
                content = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        status, headers = seen.get("status", "500 Internal Server Error"), seen.get("headers", [])
        kind = next((v for k, v in headers if k.lower() == "content-type"), "")
        if status.startswith("404") and "text/html" in kind and content.lstrip()[:14].lower() == b"<!doctype html":
            # werkzeug's "Not Found" page: no moto service routes the request
            return _respond(start_response, *routes.not_implemented(environ, body))
        start_response(status, headers, seen.get("exc_info"))
        return [content]


def _respond(start_response: Any, status: str, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _request_handler(verbose: bool) -> type:
    """moto's handler logs every request to stderr: only with --verbose."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    if verbose:
        return MotoRequestHandler

    class QuietRequestHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    return QuietRequestHandler


def _application() -> SerializedApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return SerializedApp(DomainDispatcherApplication(create_backend_app))


def reset_state() -> None:
    """Forget every stack and resource (what POST /moto-api/reset does)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


class Emulator:
    """The local AWS emulator on a loopback port, in a background thread of this process.

    ``port=0`` picks a free port. Starting resets moto's state, so each instance starts empty (moto's
    state is per process: two emulators running at once in one process share it).

        with Emulator() as url:
            boto3.client("cloudformation", endpoint_url=url, region_name="us-east-1")
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", verbose: bool = False):
        self.port, self.host, self.verbose = port, host, verbose
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def app(self) -> SerializedApp:
        """The WSGI application being served (tests wrap ``app.app`` to observe requests)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._server.app

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> str:
        """Start serving; returns the endpoint URL."""
        if self._server is not None:
            return self.url
        patches.apply()
        reset_state()
        self._server = make_server(self.host, self.port, _application(), threaded=True,
                                   request_handler=_request_handler(self.verbose))
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"emulator:{self.url}",
                                        daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(port: int = 5000, host: str = "127.0.0.1", ready: Any = None, verbose: bool = False) -> None:
    """Serve in the foreground until interrupted; ``ready(url)`` is called once the port is bound. Requests
    are logged to stderr only when ``verbose``."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # werkzeug prints and exits when the port is taken: find out first, as an OSError the caller can word
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    patches.apply()
    server = make_server(host, port, _application(), threaded=True, request_handler=_request_handler(verbose))
    if ready is not None:
        ready(f"http://{host}:{server.server_port}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
