"""Requests the emulator answers itself, and AWS-shaped errors where moto's server would answer a web page.

moto's server answers a path none of its services route (Backup's ``ListRecoveryPointsByBackupVault``,
for one) with werkzeug's HTML "404 Not Found" page, which clients print raw. Here such a request gets
what an AWS endpoint answers for an operation it lacks: HTTP 400 ``UnknownOperationException``, as XML
for the query protocol (a form with ``Action=``) and JSON otherwise, saying the local emulator does not
implement it.

Answered here: ``GET /_perfdeploy/placeholders`` (the live placeholders), ``GET /_perfdeploy/emulator``
(this is the emulator: images.py asks before it pushes a placeholder image) and the recovery points of a
backup vault (a placeholder: nothing is ever backed up locally, so a vault that exists has none).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

PLACEHOLDERS_PATH = "/_perfdeploy/placeholders"
EMULATOR_PATH = "/_perfdeploy/emulator"  # images.is_emulator asks it
RECOVERY_POINTS = re.compile(r"^/backup-vaults/(?P<name>[^/]+)/recovery-points/?$")
CODE = "UnknownOperationException"


def own_answer(environ: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(status, JSON body) for a request the emulator answers itself, else None."""
    path = environ.get("PATH_INFO", "")
    if path == EMULATOR_PATH:
        import moto

        return "200 OK", {"Emulator": "perfdeploy", "Moto": moto.__version__}
    if path == PLACEHOLDERS_PATH:
        from perfdeploy.local.placeholders import live_placeholders

        return "200 OK", {"Placeholders": live_placeholders()}
    match = RECOVERY_POINTS.match(path)
    if match and environ.get("REQUEST_METHOD") == "GET" and "backup" in _signed_service(environ):
        from perfdeploy.local.placeholders import placeholder_named

        name = match["name"]
        if placeholder_named("AWS::Backup::BackupVault", name) is None:
            return "400 Bad Request", {"__type": "ResourceNotFoundException", "Code": "ResourceNotFoundException",
                                       "Message": f"Backup vault {name} does not exist"}
        return "200 OK", {"RecoveryPoints": []}
    return None


def _signed_service(environ: dict[str, Any]) -> str:
    # Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ...
    found = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return found.group(1) if found else ""


def not_implemented(environ: dict[str, Any], body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """The AWS-shaped answer for a request no moto service routes."""
    service = _signed_service(environ) or "this service"
    action = _query_action(environ, body)
    what = action or f"{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '/')}"
    message = f"The local emulator (moto) does not implement {service} {what}"
    if action:
        text = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{CODE}</Code><Message>{_xml(message)}</Message>"
                "</Error><RequestId>0</RequestId></ErrorResponse>").encode()
        return "400 Bad Request", [("Content-Type", "text/xml")], text
    text = json.dumps({"__type": CODE, "message": message}).encode()
    return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", CODE)], text


def _query_action(environ: dict[str, Any], body: bytes) -> str:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        form = parse_qs(body.decode("utf-8", "replace"))
        return form.get("Action", [""])[0]
    return ""


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
