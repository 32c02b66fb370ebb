"""WebFetch against a real local server: Markdown, redirects, caps, and the SSRF guard.

Successful fetches use `trusted_hosts` to reach 127.0.0.1 under the name site.test (which
no DNS knows, so a success also shows the connection went to the checked address). The guard's
refusals use the real checks, with no trusted names.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.web_server import Page, WebServer, redirect, tls_contexts
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.html_text import html_to_markdown
from koda.tools.net_guard import NetGuard, UnsafeUrl, blocked_reason
from koda.tools.web_fetch import MAX_BODY, MAX_REDIRECTS, WebFetch

HOST = "site.test"


@pytest.fixture
def server() -> Iterator[WebServer]:
    with WebServer() as web:
        yield web


def site(server: WebServer, path: str = "/") -> str:
    return server.url(path, host=HOST)


def trusting() -> WebFetch:
    return WebFetch(trusted_hosts={HOST: "127.0.0.1"})


async def fetch(
    ctx: ToolContext, url: str, tool: WebFetch | None = None, **args: Any
) -> ToolResult:
    return await (tool or trusting()).run(ctx, {"url": url, **args})


# --- successful fetches ---------------------------------------------------------------------


async def test_html_becomes_markdown(server: WebServer, ctx: ToolContext) -> None:
    server.pages["/docs"] = Page(
        "<html><head><title>Docs</title><script>alert('x')</script></head><body>"
        "<nav><a href='/'>Home</a></nav><main><h1>Install</h1><p>Run <code>pip install"
        " koda</code>, then read <a href='/guide'>the guide</a>.</p></main></body></html>"
    )
    result = await fetch(ctx, site(server, "/docs"))
    assert result.ok
    assert result.output == (
        f"URL: {site(server, '/docs')}\n\n# Install\n\n"
        f"Run `pip install koda`, then read [the guide]({site(server, '/guide')})."
    )
    assert result.full_output is None


async def test_connects_to_the_checked_address_with_the_real_host_header(
    server: WebServer, ctx: ToolContext
) -> None:
    server.pages["/"] = Page("hello", content_type="text/plain")
    await fetch(ctx, site(server, "/?q=1#frag"))
    (request,) = server.requests
    assert request.path == "/?q=1"
    assert request.headers["host"] == f"{HOST}:{server.port}"
    assert request.headers["user-agent"].startswith("Koda/")
    assert "text/html" in request.headers["accept"]


async def test_text_and_json_pass_through(server: WebServer, ctx: ToolContext) -> None:
    data = {"name": "koda", "tags": ["a", "b"], "html": "<b>not converted</b>"}
    server.pages["/api"] = Page(json.dumps(data), content_type="application/json")
    server.pages["/notes"] = Page("line 1\n  <p>kept</p>\n", content_type="text/plain")
    server.pages["/feed"] = Page("<rss><item/></rss>", content_type="application/rss+xml")
    api = await fetch(ctx, site(server, "/api"))
    assert json.loads(api.output.split("\n\n", 1)[1]) == data
    notes = await fetch(ctx, site(server, "/notes"))
    assert notes.output.endswith("\n\nline 1\n  <p>kept</p>")
    assert (await fetch(ctx, site(server, "/feed"))).output.endswith("<rss><item/></rss>")


async def test_raw_returns_the_html_source(server: WebServer, ctx: ToolContext) -> None:
    server.pages["/"] = Page("<h1>Title</h1><p>x</p>")
    assert (await fetch(ctx, site(server), raw=True)).output.endswith("<h1>Title</h1><p>x</p>")
    assert (await fetch(ctx, site(server), raw="false")).output.endswith("# Title\n\nx")


@pytest.mark.parametrize(("page", "expected"), [
    (Page("caf\xe9".encode("latin-1"), content_type="text/plain; charset=ISO-8859-1"), "café"),
    (Page(b'<meta charset="windows-1252"><p>\x93quoted\x94</p>', content_type="text/html"),
     "\u201cquoted\u201d"),
    (Page("\ufeffcafé".encode(), content_type="text/plain"), "café"),
    (Page("naïve".encode("utf-16"), content_type="text/plain"), "naïve"),
    (Page(b"bad \xff byte", content_type="text/plain; charset=no-such-charset"), "bad \ufffd byte"),
    (Page(b"<!DOCTYPE html><p>sniffed</p>", content_type=""), "sniffed"),
    (Page("untyped text é".encode(), content_type="application/octet-stream"), "untyped text é"),
])  # fmt: skip
async def test_character_sets_and_sniffing(
    server: WebServer, ctx: ToolContext, page: Page, expected: str
) -> None:
    server.pages["/"] = page
    assert (await fetch(ctx, site(server))).output.endswith(f"\n\n{expected}")


@pytest.mark.parametrize("page", [
    Page(b"\x89PNG\r\n\x1a\n" + bytes(100), content_type="image/png"),
    Page(b"%PDF-1.7 ...", content_type="application/pdf"),
    Page(b"ELF\x00\x01\x02", content_type="application/octet-stream"),
    Page(b"text with a \x00 NUL", content_type="text/plain"),
    Page(b"\xff\xfe\xfd\xfc" * 100, content_type=""),
])  # fmt: skip
async def test_binary_content_is_refused_with_a_note(
    server: WebServer, ctx: ToolContext, page: Page
) -> None:
    server.pages["/file"] = page
    with pytest.raises(ToolError, match=r"is binary content \(.*bytes\); WebFetch reads HTML"):
        await fetch(ctx, site(server, "/file"))


async def test_empty_page_says_so(server: WebServer, ctx: ToolContext) -> None:
    server.pages["/"] = Page("<html><body><script>render()</script></body></html>")
    assert (await fetch(ctx, site(server))).output.endswith("it may need JavaScript)")


async def test_redirects_are_followed_and_reported(server: WebServer, ctx: ToolContext) -> None:
    server.pages["/a"] = redirect("/b", 301)
    server.pages["/b"] = redirect(site(server, "/c"), 307)
    server.pages["/c"] = Page("arrived", content_type="text/plain")
    result = await fetch(ctx, site(server, "/a"))
    assert result.output == (
        f"URL: {site(server, '/c')} (redirected from {site(server, '/a')})\n\narrived"
    )
    assert server.paths() == ["/a", "/b", "/c"]


async def test_redirect_chains_are_limited(server: WebServer, ctx: ToolContext) -> None:
    server.pages["/loop"] = redirect("/loop")
    with pytest.raises(ToolError, match=f"Too many redirects \\(more than {MAX_REDIRECTS}\\)"):
        await fetch(ctx, site(server, "/loop"))
    assert len(server.requests) == MAX_REDIRECTS + 1


@pytest.mark.parametrize(("location", "message"), [
    ("http://127.0.0.1:{port}/secret", "127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://localhost:{port}/secret", "localhost is a local or internal name"),
    ("http://[::1]:{port}/secret", ":1 is a loopback address"),
    ("http://2130706433:{port}/secret", r"2130706433 \(127.0.0.1\) is a loopback address"),
    ("file:///etc/passwd", "only http and https URLs can be fetched, not 'file:'"),
])  # fmt: skip
async def test_every_redirect_hop_is_checked(
    server: WebServer, ctx: ToolContext, location: str, message: str
) -> None:
    server.pages["/start"] = redirect(location.format(port=server.port))
    server.pages["/secret"] = Page("private data", content_type="text/plain")
    with pytest.raises(UnsafeUrl, match=message):
        await fetch(ctx, site(server, "/start"))
    assert server.paths() == ["/start"]


async def test_error_statuses_show_the_start_of_the_error_page(
    server: WebServer, ctx: ToolContext
) -> None:
    server.pages["/api"] = Page(
        '{"error": "bad token"}', status=401, content_type="application/json"
    )
    with pytest.raises(ToolError, match=r"HTTP 404 Not Found from .*/missing:\n# Not Found$"):
        await fetch(ctx, site(server, "/missing"))
    with pytest.raises(
        ToolError, match=r'HTTP 401 Unauthorized from .*:\n\{"error": "bad token"\}'
    ):
        await fetch(ctx, site(server, "/api"))


# --- sizes and time ---------------------------------------------------------------------------


async def test_long_pages_are_cut_to_a_size_that_grows_with_the_context(
    server: WebServer, ctx: ToolContext
) -> None:
    text = "\n".join(f"line {n:05d} " + "x" * 40 for n in range(4000))  # about 200 KB
    server.pages["/"] = Page(text, content_type="text/plain")
    ctx.context_window = 100_000
    small = await fetch(ctx, site(server))
    assert 14_000 < len(small.output) < 15_200
    assert small.output.endswith("characters]") and "of 207,999 characters" in small.output
    assert small.output.splitlines()[-3].startswith("line ")  # cut at a line end
    assert small.full_output is not None and small.full_output.endswith("line 03999 " + "x" * 40)
    ctx.context_window = 1_000_000
    large = await fetch(ctx, site(server))
    assert 59_000 < len(large.output) < 60_200


async def test_bodies_past_the_cap_are_not_read(server: WebServer, ctx: ToolContext) -> None:
    server.pages["/big"] = Page(b"a" * (MAX_BODY + 1_000_000), content_type="text/plain")
    # 60 MB of zeros in about 60 KB of gzip: the cap counts decompressed bytes.
    server.pages["/bomb"] = Page(bytes(60_000_000), content_type="text/plain", gzip=True)
    started = time.monotonic()
    big = await fetch(ctx, site(server, "/big"))
    assert f"[only the first {MAX_BODY:,} bytes of the response were read]" in big.output
    with pytest.raises(ToolError, match=f"binary content \\(text/plain, {MAX_BODY:,}\\+ bytes"):
        await fetch(ctx, site(server, "/bomb"))
    assert time.monotonic() - started < 10


async def test_the_timeout_covers_the_whole_chain(server: WebServer, ctx: ToolContext) -> None:
    tool = WebFetch(trusted_hosts={HOST: "127.0.0.1"}, timeout=1.0)
    server.pages["/slow"] = Page("late", delay=3)
    server.pages["/hop"] = redirect("/drip")
    server.pages["/drip"] = Page("x" * 20_000, content_type="text/plain", drip=0.1)
    for path in ("/slow", "/hop"):
        started = time.monotonic()
        with pytest.raises(ToolError, match="did not answer within 1 s"):
            await fetch(ctx, site(server, path), tool)
        assert time.monotonic() - started < 2


async def test_a_closed_port_is_a_clear_error(ctx: ToolContext) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ToolError, match=f"Could not fetch http://{HOST}:{port}/: "):
        await fetch(ctx, f"http://{HOST}:{port}/")


async def test_https_is_verified_against_the_host_name_not_the_address(
    ctx: ToolContext, tmp_path: Path
) -> None:
    server_tls, client_tls = tls_contexts(tmp_path, HOST)
    with WebServer(tls=server_tls) as web:
        web.pages["/"] = Page("<p>secure</p>")
        tool = WebFetch(trusted_hosts={HOST: "127.0.0.1", "other.test": "127.0.0.1"},
                        verify=client_tls)  # fmt: skip
        result = await fetch(ctx, web.url("/", host=HOST), tool)
        assert result.output.endswith("\n\nsecure")
        assert web.requests[0].headers["host"] == f"{HOST}:{web.port}"
        # The certificate does not name other.test: refused though the address is the same.
        with pytest.raises(ToolError, match=r"Could not fetch .*CERTIFICATE_VERIFY_FAILED"):
            await fetch(ctx, web.url("/", host="other.test"), tool)


# --- the guard, with real resolution ------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:{port}/", "127.0.0.1 is a loopback address"),
    ("http://127.1:{port}/", r"127.1 \(127.0.0.1\) is a loopback"),
    ("http://2130706433:{port}/", r"2130706433 \(127.0.0.1\) is a loopback"),
    ("http://0177.0.0.1:{port}/", r"0177.0.0.1 \(127.0.0.1\) is a loopback"),
    ("http://0x7f.0.0.1:{port}/", r"0x7f.0.0.1 \(127.0.0.1\) is a loopback"),
    ("http://localhost:{port}/", "localhost is a local or internal name"),
    ("http://LocalHost.:{port}/", "localhost is a local or internal name"),
    ("http://app.localhost:{port}/", "app.localhost is a local or internal name"),
    ("http://[::1]:{port}/", ":1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]:{port}/", "::ffff:127.0.0.1 is a loopback address"),
    ("http://[::ffff:7f00:1]:{port}/", "is a loopback address"),
    ("http://0.0.0.0:{port}/", "0.0.0.0 is an unspecified address"),
    ("http://[::]:{port}/", ":: is an unspecified address"),
    ("http://10.1.2.3/", "is a private address"),
    ("http://172.16.0.1/", "is a private address"),
    ("http://192.168.1.1/", "is a private address"),
    ("http://100.64.0.1/", "is a shared \\(CGNAT\\) address"),
    ("http://169.254.169.254/latest/meta-data/", "is a cloud metadata address"),
    ("http://169.254.1.1/", "is a link-local address"),
    ("http://metadata.google.internal/computeMetadata/v1/", "is a local or internal name"),
    ("http://192.0.0.192/", "is an IETF protocol address"),
    ("http://224.0.0.1/", "is a multicast address"),
    ("http://[fe80::1]/", "is a link-local address"),
    ("http://[fc00::1]/", "is a private address"),
    ("http://[fd00:ec2::254]/", "is a cloud metadata address"),
    ("http://[ff02::1]/", "is a multicast address"),
    ("http://[64:ff9b::7f00:1]/", "is a loopback address"),  # NAT64 of 127.0.0.1
    ("http://[2002:a00:1::1]/", "is a private address"),  # 6to4 of 10.0.0.1
])  # fmt: skip
async def test_the_guard_refuses_non_public_addresses(
    server: WebServer, ctx: ToolContext, url: str, message: str
) -> None:
    server.pages["/"] = Page("must not be served")
    with pytest.raises(UnsafeUrl, match=f"Refused .*: .*{message}"):
        await WebFetch().run(ctx, {"url": url.format(port=server.port)})
    assert server.requests == []


async def test_a_name_resolving_to_this_machine_is_refused(ctx: ToolContext) -> None:
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80)}
    except socket.gaierror:
        pytest.skip("this machine's name does not resolve")
    if any(blocked_reason(ipaddress.ip_address(a.split("%")[0])) is None for a in addresses):
        pytest.skip("this machine's name resolves to a public address")
    with pytest.raises(UnsafeUrl, match=f"Refused http://{name}/: {name} \\(.*\\) is a "):
        await WebFetch().run(ctx, {"url": f"http://{name}/"})


@pytest.mark.parametrize(("url", "message"), [
    ("file:///etc/passwd", "not 'file:'"),
    ("ftp://example.com/x", "not 'ftp:'"),
    ("javascript:alert(1)", "not 'javascript:'"),
    ("gopher://127.0.0.1:70/", "not 'gopher:'"),
    ("example.com/page", "not no scheme"),
    ("http://user:secret@example.com/", "URLs with credentials"),
    ("http://example.com@127.0.0.1/", "URLs with credentials"),
    ("http:///path-only", "no host"),
    ("http://example.com:99999/", "bad port"),
    ("http://[::1/", "Not a valid URL"),
])  # fmt: skip
async def test_schemes_credentials_and_malformed_urls(
    ctx: ToolContext, url: str, message: str
) -> None:
    with pytest.raises(UnsafeUrl, match=message):
        await WebFetch().run(ctx, {"url": url})


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.215.14"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


async def test_trusted_names_are_exact(ctx: ToolContext) -> None:
    guard = NetGuard({HOST: "127.0.0.1"})
    assert (await guard.check(f"http://{HOST}:8080/a?b")).connect_url == "http://127.0.0.1:8080/a?b"
    with pytest.raises(UnsafeUrl):
        await guard.check(f"http://www.{HOST}.localhost/")
    with pytest.raises(UnsafeUrl, match="loopback"):
        await guard.check("http://127.0.0.1/")


# --- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    ({}, "Missing required argument 'url'"),
    ({"url": " "}, "'url' must not be empty"),
    ({"url": ["http://x"]}, "'url' must be a string"),
    ({"url": "http://x", "raw": "yes"}, "'raw' must be a boolean"),
])  # fmt: skip
async def test_argument_errors(ctx: ToolContext, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        await WebFetch().run(ctx, args)


def test_effect_and_summary() -> None:
    assert WebFetch().effect({"url": "https://example.com"}) is Effect.READ_ONLY
    assert WebFetch().summary({"url": "https://example.com/a"}) == "WebFetch: https://example.com/a"


# --- HTML to Markdown ---------------------------------------------------------------------------


def test_markdown_structure() -> None:
    html = """<!doctype html><html><head><title>T</title><style>p{}</style></head><body>
    <header>Site</header><nav><a href="/">Home</a></nav>
    <main>
      <h2>Intro <small>v2</small></h2>
      <p>Some <b>bold </b>and <em>em</em>,<br>a break &amp; an entity &copy;.
      <p>Next paragraph
      <ul><li>one<li>two<ul><li>nested</ul><li><p>three</p></ul>
      <ol start="3"><li>c<li>d</ol>
      <pre class="language-python"><code>def f():
    return "```"
</code></pre>
      <table><tr><th>Name<th>Value|x<tr><td>a<td>1<tr><td>b</table>
      <blockquote><p>quote</p><p>more</p></blockquote>
      <dl><dt>Term<dd>Meaning</dl>
      <div hidden>hidden</div><span aria-hidden="true">icon</span>
      <p><img src="i.png" alt="Diagram"> <a href="javascript:go()">js link</a>
         <a href="#top">top</a> <a href="../x.html">rel</a></p>
    </main><footer>Footer</footer></body></html>"""
    assert html_to_markdown(html, "https://example.com/docs/page.html") == (
        "# T\n\n"
        "## Intro v2\n\n"
        "Some **bold** and *em*,\na break & an entity ©.\n\n"
        "Next paragraph\n\n"
        "- one\n- two\n  - nested\n- three\n\n"
        "3. c\n4. d\n\n"
        '````python\ndef f():\n    return "```"\n````\n\n'
        "| Name | Value\\|x |\n| --- | --- |\n| a | 1 |\n| b |  |\n\n"
        "> quote\n>\n> more\n\n"
        "**Term**\n: Meaning\n\n"
        "![Diagram](https://example.com/docs/i.png) js link top [rel](https://example.com/x.html)"
    )


def test_main_content_is_preferred_and_base_href_used() -> None:
    html = (
        "<base href='https://cdn.example.org/root/'><div>sidebar junk</div>"
        "<article><h1>Post</h1><p><a href='a'>A</a></p></article>"
    )
    assert html_to_markdown(html, "https://example.com/") == (
        "# Post\n\n[A](https://cdn.example.org/root/a)"
    )


def test_an_empty_main_falls_back_to_the_whole_page() -> None:
    html = "<body><div id=app><main></main></div><p>Static fallback text</p></body>"
    assert html_to_markdown(html) == "Static fallback text"


def test_hostile_html_does_not_break_the_converter() -> None:
    deep = "<div>" * 50_000 + "deep text" + "</div>" * 50_000
    assert html_to_markdown(deep) == "deep text"
    assert html_to_markdown("<p>unclosed <b>bold <i>both</p><p>next") == (
        "unclosed **bold *both***\n\nnext"
    )
    assert html_to_markdown("</p></div><<>>&bogus; <script>") == "<<>>&bogus;"
    assert html_to_markdown("") == ""
