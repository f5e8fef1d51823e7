"""Outgoing HTTP, to the origins the action grants (`capabilities.http`), over wasi:http.

    response = http.post("https://api.example.com/deployments", json={"tag": "v1.2.3"})
    if not response.ok:
        log.warn(f"upstream said {response.status}: {response.text()}")

Calls block until the whole response is read. The host adds the grant's headers (credentials)
after the request leaves the plugin: do not set them yourself, and expect never to see them. A
request the host refuses (origin not granted, or a private address the grant does not name)
raises `Denied`, which fails the run as `denied` if left to escape `run`; any other failure to
get a response raises `HttpError` (`failed`). A response with any status, 4xx and 5xx included,
is returned: check `ok` or `status`.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import failures

#: Bytes asked for per read of the response body.
_CHUNK = 64 * 1024


class HttpError(failures.Failure):
    """No response: the request was invalid, or connecting, sending or receiving failed."""

    kind = "failed"

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class Denied(HttpError, failures.Denied):
    """The host refused the request; the message names the URL and why."""

    kind = "denied"


@dataclass
class Response:
    """A response, read in full."""

    status: int
    #: (name, value) pairs in the order received; names lower-case.
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def text(self) -> str:
        """The body as UTF-8 text (invalid bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises `HttpError` when it is not JSON."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise HttpError(f"the response body is not JSON: {e}") from None

    def header(self, name: str) -> str | None:
        """The first header with this name (case-insensitive), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


def request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    json: Any = None,
) -> Response:
    """Sends a request and reads the whole response. `json` sets a JSON body and its
    content type; `body` (bytes, or str sent as UTF-8) a raw one."""
    from componentize_py_types import Err
    from wit_world.imports import outgoing_handler, poll, streams
    from wit_world.imports import wasi_http_types as wit

    headers = dict(headers or {})
    if json is not None:
        body = _json.dumps(json).encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = "application/json"
    if isinstance(body, str):
        body = body.encode()
    body = body or b""
    # A known length, rather than a chunked body: not every server reads chunked requests.
    if (body or method.upper() in ("POST", "PUT", "PATCH")) and not any(
        k.lower() == "content-length" for k in headers
    ):
        headers["content-length"] = str(len(body))

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HttpError(f"invalid HTTP request: {url!r} is not an absolute http(s) URL", url)
    try:
        fields = wit.Fields.from_list([(k, str(v).encode()) for k, v in headers.items()])
    except Err as e:
        raise HttpError(f"invalid HTTP request to {url}: header {type(e.value).__name__}", url) from None
    outgoing = wit.OutgoingRequest(fields)
    _set(outgoing.set_method, _method(wit, method), url, "method")
    _set(outgoing.set_scheme, wit.Scheme_Https() if parts.scheme == "https" else wit.Scheme_Http(), url, "scheme")
    _set(outgoing.set_authority, parts.netloc, url, "authority")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    _set(outgoing.set_path_with_query, path, url, "path")

    outgoing_body = outgoing.body()
    try:
        future = outgoing_handler.handle(outgoing, None)
    except Err as e:
        raise _error(e.value, url) from None
    with future:
        # Write the body after `handle`: the host reads it as it comes (a body written first
        # could fill the pipe and block forever).
        try:
            _write(outgoing_body, body)
        except Err:
            # The host stopped reading; dropping the body ends it, and the response (or its
            # error) says why.
            outgoing_body.__exit__(None, None, None)
        else:
            try:
                wit.OutgoingBody.finish(outgoing_body, None)
            except Err:
                pass  # e.g. a content-length header the body does not match: the response says so
        with future.subscribe() as ready:
            ready.block()
        result = future.get()
    # get() is Some(Ok(Ok(response) | Err(error-code))) once ready.
    inner = result.value
    if isinstance(inner, Err):
        raise _error(inner.value, url)
    with inner.value as response:
        status = response.status()
        with response.headers() as fields:
            pairs = [(k.lower(), v.decode("latin-1")) for k, v in fields.entries()]
        content = _read(response.consume(), url, streams, wit)
    return Response(status=status, headers=pairs, body=content)


def get(url: str, headers: dict[str, str] | None = None) -> Response:
    """GET `url`."""
    return request("GET", url, headers=headers)


def post(url: str, headers: dict[str, str] | None = None, body: bytes | str | None = None, json: Any = None) -> Response:
    """POST `json` (or `body`) to `url`."""
    return request("POST", url, headers=headers, body=body, json=json)


def put(url: str, headers: dict[str, str] | None = None, body: bytes | str | None = None, json: Any = None) -> Response:
    """PUT `json` (or `body`) to `url`."""
    return request("PUT", url, headers=headers, body=body, json=json)


def delete(url: str, headers: dict[str, str] | None = None) -> Response:
    """DELETE `url`."""
    return request("DELETE", url, headers=headers)


def _method(wit: Any, method: str) -> Any:
    known = {
        "GET": wit.Method_Get, "HEAD": wit.Method_Head, "POST": wit.Method_Post,
        "PUT": wit.Method_Put, "DELETE": wit.Method_Delete, "CONNECT": wit.Method_Connect,
        "OPTIONS": wit.Method_Options, "TRACE": wit.Method_Trace, "PATCH": wit.Method_Patch,
    }
    kind = known.get(method.upper())
    return kind() if kind else wit.Method_Other(method)


def _set(setter: Any, value: Any, url: str, what: str) -> None:
    from componentize_py_types import Err

    try:
        setter(value)
    except Err:
        raise HttpError(f"invalid HTTP request to {url}: bad {what}", url) from None


def _write(outgoing_body: Any, data: bytes) -> None:
    """Writes `data` to the request body, waiting whenever the host's buffer is full."""
    with outgoing_body.write() as stream:
        view = memoryview(data)
        while view:
            allowed = stream.check_write()
            if allowed == 0:
                with stream.subscribe() as ready:
                    ready.block()
                continue
            stream.write(bytes(view[:allowed]))
            view = view[allowed:]
        stream.blocking_flush()


def _read(incoming_body: Any, url: str, streams: Any, wit: Any) -> bytes:
    """Reads the whole response body."""
    from componentize_py_types import Err

    chunks = []
    with incoming_body:
        with incoming_body.stream() as stream:
            while True:
                try:
                    chunks.append(stream.blocking_read(_CHUNK))
                except Err as e:
                    if isinstance(e.value, streams.StreamError_Closed):
                        break
                    code = wit.http_error_code(e.value.value)
                    if code is not None:
                        raise _error(code, url) from None
                    raise HttpError(f"HTTP request to {url} failed: {e.value.value.to_debug_string()}", url) from None
    return b"".join(chunks)


def _error(code: Any, url: str) -> HttpError:
    """The exception for a wasi:http `error-code`."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    if name == "HttpRequestDenied":
        return Denied(
            f"HTTP request to {url} denied by the host: the action does not grant this origin "
            "(add it to invocationMethod.capabilities.http)",
            url,
        )
    if name == "DestinationIpProhibited":
        return Denied(
            f"HTTP request to {url} denied by the host: it resolves to a private or loopback "
            "address, which a grant must name itself",
            url,
        )
    detail = getattr(code, "value", None)
    return HttpError(f"HTTP request to {url} failed: {name}" + (f" ({detail})" if detail else ""), url)
