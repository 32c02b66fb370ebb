"""WebFetch: GET a public web page and give the model its text (HTML as Markdown).

Redirects are followed here, not by the HTTP client, so every hop goes through the NetGuard;
each connection goes to the address the guard checked (Host header and TLS name kept), so a
DNS answer that changes between check and connect cannot reach a private address.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin

from koda._version import __version__
from koda.tools.args import one_line, opt_bool, req_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.html_text import html_to_markdown
from koda.tools.net_guard import NetGuard, Target
from koda.tools.schema import arguments, boolean, string

if TYPE_CHECKING:
    import httpx2

TIMEOUT = 15.0  # for the whole redirect chain
MAX_REDIRECTS = 5
MAX_BODY = 5_000_000  # bytes read from the response, after decompression
OUTPUT_CHARS = 15_000  # base for the text the model sees; grows with its context window
USER_AGENT = f"Koda/{__version__} (AI coding agent)"
ACCEPT = "text/markdown, text/html;q=0.9, text/plain;q=0.8, application/json;q=0.8, */*;q=0.5"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({
    "application/json", "application/xml", "application/javascript", "application/x-javascript",
    "application/ecmascript", "application/yaml", "application/x-yaml", "application/toml",
    "application/x-ndjson", "application/sql", "application/graphql", "application/x-sh",
})  # fmt: skip
UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})

Kind = Literal["html", "text", "binary"]


@dataclass
class _Page:
    url: str
    status: int
    reason: str
    content_type: str
    body: bytes
    cut: bool  # the body was longer than MAX_BODY


class WebFetch:
    name = "WebFetch"
    description = (
        "GET a public http(s) URL: HTML comes back as Markdown, text and JSON as they are; "
        "long pages are cut. Private and local addresses are refused."
    )

    def __init__(
        self,
        *,
        trusted_hosts: Mapping[str, str] | None = None,
        verify: ssl.SSLContext | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        # trusted_hosts and verify exist for tests (local servers under a name, a test CA).
        self.guard = NetGuard(trusted_hosts)
        self.verify = verify
        self.timeout = timeout
        self.parameters: dict[str, Any] = arguments(
            ["url"],
            url=string("http or https URL."),
            raw=boolean("Return HTML source instead of Markdown."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return f"WebFetch: {one_line(args.get('url', ''), 120)}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        url = req_str(args, "url", allow_empty=False).strip()
        raw = opt_bool(args, "raw")
        try:
            async with asyncio.timeout(self.timeout):
                page = await self._fetch(url)
        except TimeoutError:
            raise ToolError(f"{url} did not answer within {self.timeout:g} s.") from None
        if page.status >= 400:
            raise ToolError(await _http_error(page))
        return _result(ctx, url, page, await _page_text(page, raw))

    async def _fetch(self, url: str) -> _Page:
        import httpx2

        async with httpx2.AsyncClient(
            # No proxies from the environment: the connection must go to the checked address.
            trust_env=False,
            follow_redirects=False,
            verify=self.verify if self.verify is not None else True,
            timeout=httpx2.Timeout(self.timeout),
        ) as client:
            current = url
            for _ in range(MAX_REDIRECTS + 1):
                target = await self.guard.check(current)
                response = await _send(client, target)
                try:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECTS and location:
                        current = urljoin(current, location.strip())
                        continue
                    body, cut = await _read(response, current)
                    return _Page(
                        current,
                        response.status_code,
                        response.reason_phrase,
                        response.headers.get("content-type", ""),
                        body,
                        cut,
                    )
                finally:
                    await response.aclose()
        raise ToolError(f"Too many redirects (more than {MAX_REDIRECTS}) starting at {url}.")


async def _send(client: httpx2.AsyncClient, target: Target) -> httpx2.Response:
    import httpx2

    headers = {"Host": target.host_header, "User-Agent": USER_AGENT, "Accept": ACCEPT}
    # TLS is checked against the host name while the socket goes to the checked address.
    named = target.scheme == "https" and target.host != target.address
    extensions = {"sni_hostname": target.host} if named else {}
    request = client.build_request(
        "GET", target.connect_url, headers=headers, extensions=extensions
    )
    try:
        return await client.send(request, stream=True)
    except httpx2.TimeoutException as exc:
        raise ToolError(f"{target.url} timed out ({type(exc).__name__}).") from exc
    except httpx2.HTTPError as exc:
        raise ToolError(f"Could not fetch {target.url}: {_reason(exc)}.") from exc


async def _read(response: httpx2.Response, url: str) -> tuple[bytes, bool]:
    import httpx2

    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY:
                return b"".join(chunks)[:MAX_BODY], True
    except httpx2.HTTPError as exc:
        raise ToolError(f"Reading {url} failed: {_reason(exc)}.") from exc
    return b"".join(chunks), False


async def _http_error(page: _Page) -> str:
    """The status, and the start of the error page when it is text (APIs explain errors there)."""
    try:
        excerpt = (await _page_text(page, raw=False))[:1000].strip()
    except ToolError:
        excerpt = ""
    message = f"HTTP {page.status} {page.reason} from {page.url}"
    return f"{message}:\n{excerpt}" if excerpt else f"{message}."


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


async def _page_text(page: _Page, raw: bool) -> str:
    kind = _kind(page.content_type, page.body)
    if kind == "binary":
        mime = page.content_type.split(";")[0].strip() or "no content type"
        size = f"{len(page.body):,}{'+' if page.cut else ''} bytes"
        raise ToolError(
            f"{page.url} is binary content ({mime}, {size}); WebFetch reads HTML and text only."
        )
    text = _decode(page.body, page.content_type, kind == "html")
    if kind == "html" and not raw:
        # html.parser is pure Python: a large page takes a moment, so not on the event loop.
        return await asyncio.to_thread(html_to_markdown, text, page.url)
    return text


def _kind(content_type: str, body: bytes) -> Kind:
    mime = content_type.split(";")[0].strip().lower()
    head = body[:8192]
    if mime in HTML_TYPES:
        return "html"
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in head and not utf16:
        return "binary"
    if mime.startswith("text/") or mime in TEXT_TYPES or mime.endswith(("+json", "+xml")):
        return "text"
    if mime not in UNTYPED:
        return "binary"
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "html"
    try:
        # The sample may end inside a multi-byte character; that alone does not make it binary.
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            return "binary"
    return "text"


def _decode(body: bytes, content_type: str, html: bool) -> str:
    if body.startswith(codecs.BOM_UTF8):
        charset: str | None = "utf-8-sig"
    elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        charset = "utf-16"
    else:
        charset = _charset(content_type) or (_meta_charset(body) if html else None)
    try:
        codecs.lookup(charset or "utf-8")
    except LookupError:
        charset = None
    return body.decode(charset or "utf-8", errors="replace")


def _charset(content_type: str) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else None


def _meta_charset(body: bytes) -> str | None:
    """<meta charset=...> or <meta http-equiv content="...; charset=..."> near the top."""
    head = body[:4096].decode("ascii", errors="replace")
    match = re.search(r"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", head, re.IGNORECASE)
    return match.group(1) if match else None


def _result(ctx: ToolContext, url: str, page: _Page, text: str) -> ToolResult:
    header = f"URL: {page.url}" + (f" (redirected from {url})" if page.url != url else "")
    text = text.strip() or "(the page has no readable text; it may need JavaScript)"
    notes = [f"[only the first {MAX_BODY:,} bytes of the response were read]"] if page.cut else []
    limit = scaled(ctx, OUTPUT_CHARS)
    if len(text) <= limit:
        return ToolResult("\n\n".join([header, text, *notes]))
    # Cut at a line end when one is near, so the last line shown is whole.
    end = text.rfind("\n", limit * 4 // 5, limit)
    shown = text[: end if end > 0 else limit]
    cut = f"[cut at {len(shown):,} of {len(text):,} characters]"
    return ToolResult(
        "\n\n".join([header, shown, cut, *notes]),
        full_output="\n\n".join([header, text, *notes]),
    )
