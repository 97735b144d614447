"""Endpoints that cannot be AWS: a URL that is not one, an answer that is a web page.

botocore raises `ValueError: Invalid endpoint` for the first and a parser KeyError for the second (an
HTML page where it expects an AWS response); both become one line naming the cause here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import partial

from perfdeploy.errors import ConfigError, PerfdeployError

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"  # boto3 reads it, and AWS_ENDPOINT_URL_<SERVICE> per service


class EndpointError(PerfdeployError):
    """The endpoint answered something that is not an AWS API response (a proxy's or a web server's page)."""

    exit_code = ConfigError.exit_code  # the environment points at the wrong place: bad input, not a failure


def check_endpoint_url(url: str, source: str) -> str:
    """`url` when botocore would accept it as an endpoint (http or https, a host); else ConfigError naming
    where it came from (`--endpoint-url` or the environment variable)."""
    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    if re.match(r"^https?://", url) and (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)):
        return url
    raise ConfigError(f"'{url}' is not an endpoint URL (e.g. http://127.0.0.1:5000 for the local emulator)",
                      field=source)


def check_endpoint_variables(environ: Mapping[str, str] = os.environ) -> None:
    """boto3's per-service AWS_ENDPOINT_URL_<SERVICE> variables, checked as --endpoint-url is."""
    for name, value in sorted(environ.items()):
        if name.startswith(f"{ENDPOINT_VARIABLE}_") and value:
            check_endpoint_url(value, name)


def refuse_web_pages(client) -> None:
    """Make `client` tell a web page from an AWS answer. A successful (2xx) page raises EndpointError on the
    first answer (botocore would fail on it with a KeyError); an error status with a page stays botocore's
    ClientError (retried first, for a 5xx: a load balancer's page is transient), marked so that
    `web_page_line` can say what answered."""
    client.meta.events.register("before-parse", partial(_spot_web_page, client.meta.endpoint_url))


WEB_PAGE = "PerfdeployWebPage"  # the key botocore merges into the parsed (error) response


def web_page_line(exc) -> str | None:
    """What a ClientError whose answer was a web page says, or None when AWS (or an emulator) answered."""
    page = exc.response.get(WEB_PAGE)
    return page and page["line"]


def _spot_web_page(endpoint_url: str, operation_model, response_dict, customized_response_dict, **_) -> None:
    if operation_model.has_streaming_output:
        return  # an object's own content (S3 GetObject)
    # The body decides, not Content-Type: emulators label XML answers (and empty HEAD answers) text/html.
    body = response_dict.get("body")
    head = body[:512].lstrip().lower() if isinstance(body, bytes) else b""
    if not head.startswith((b"<!doctype html", b"<html")):
        return
    title = re.search(rb"<(title|h1)[^>]*>\s*([^<]{1,80})", body, re.I)
    named = f" ('{title.group(2).decode(errors='replace').strip()}')" if title else ""
    status = response_dict["status_code"]
    line = (f"{endpoint_url} answered {operation_model.name} with a web page{named}, HTTP {status}, not an AWS "
            f"response: check --endpoint-url ({ENDPOINT_VARIABLE}) or a proxy in between")
    if 200 <= status < 300:
        raise EndpointError(line)
    customized_response_dict[WEB_PAGE] = {"line": line}
