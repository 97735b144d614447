"""What the deploy benches share: the local emulator with every AWS call it answers counted, and tools run
as fresh processes against it (perfdeploy, its peers, a bare boto3 script), timed from outside.

Calls are counted at the emulator, so every tool is counted the same way."""

from __future__ import annotations

import collections
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

from perfdeploy.local import Emulator

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


class CountingEmulator:
    """The emulator, started empty, counting each request as service.Operation (S3: s3.METHOD kind)."""

    def __init__(self):
        self.emulator = Emulator()
        self.calls: collections.Counter = collections.Counter()

    def __enter__(self) -> CountingEmulator:
        self.url = self.emulator.start()
        app = self.emulator.app
        inner = app.app

        def counted(environ, start_response):
            self.calls[_operation(environ)] += 1
            return inner(environ, start_response)
        app.app = counted
        return self

    def __exit__(self, *exc) -> None:
        self.emulator.stop()

    def reset_counts(self) -> collections.Counter:
        counted, self.calls = self.calls, collections.Counter()
        return counted

    def env(self) -> dict[str, str]:
        """The environment every tool runs in: the emulator as its AWS."""
        return {**os.environ, "AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


def _operation(environ) -> str:
    service = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    name = service.group(1) if service else "unsigned"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return f"{name}.{environ['HTTP_X_AMZ_TARGET'].rsplit('.', 1)[-1]}"
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if name != "s3":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = (parse_qs(body.decode(errors="replace")).get("Action") or query.get("Action") or ["?"])[0]
        return f"{name}.{action}"
    path = environ.get("PATH_INFO", "/").strip("/")
    return f"s3.{environ['REQUEST_METHOD']} {'object' if '/' in path else 'bucket'}"


def timed(command: list[str], env: dict[str, str], cwd: Path = ROOT, check: bool = True) -> tuple[float, str]:
    """Run a command as a fresh process; (seconds, stdout). A failure prints its stderr's tail and raises."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if check and done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        raise RuntimeError(f"{' '.join(command[:3])} exited {done.returncode}")
    return seconds, done.stdout


def perfdeploy(*args: str) -> list[str]:
    return [str(BIN / "perfdeploy"), *args]
