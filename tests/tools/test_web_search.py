"""WebSearch against a local server serving pages shaped like DuckDuckGo's HTML endpoint."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from fakes.web_server import Page, Request, WebServer
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.web_search import MAX_RESULTS, WebSearch, parse_results, unwrap

HEAD = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
 "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
  <meta http-equiv="content-type" content="text/html; charset=UTF-8">
  <meta name="referrer" content="origin" />
  <meta name="robots" content="noindex, nofollow" />
  <title>{query} at DuckDuckGo</title>
  <link rel="stylesheet" href="//duckduckgo.com/dist/h.aeda52882d97098ab9ec.css" type="text/css"/>
</head>
<body class="body--html">
  <a name="top" id="top"></a>
  <div id="header" class="header cw header--html">
    <a title="DuckDuckGo" href="/html/" class="header__logo-wrap"></a>
    <form name="x" class="header__form" action="/html/" method="post">
      <div class="search search--header">
        <input name="q" autocomplete="off" class="search__input" type="text" value="{query}" />
        <input name="b" class="search__button search__button--html" value="" type="submit" />
      </div>
      <div class="frm__select"><select name="kl">
        <option value="">All Regions</option><option value="de-de">Germany</option>
      </select></div>
    </form>
  </div>
  <div><div class="serp__results"><div id="links" class="results">
"""
AD = """
    <div class="result results_links results_links_deep result--ad ">
      <div class="links_main links_deep result__body">
        <h2 class="result__title">
          <a rel="nofollow" class="result__a" href="https://duckduckgo.com/y.js?ad_domain=shop.example&amp;ad_provider=bingv7aa&amp;ad_type=txad&amp;u3=https%3A%2F%2Fshop.example">Buy Python Books</a>
        </h2>
        <div class="result__extras"><div class="result__extras__url">
          <a rel="nofollow" class="result__url" href="https://duckduckgo.com/y.js?ad_domain=shop.example">shop.example</a>
          <a rel="nofollow" href="https://duckduckgo.com/duckduckgo-help-pages/company/ads-by-microsoft-on-duckduckgo-private-search" class="badge--ad">Ad</a>
        </div></div>
        <a class="result__snippet" href="https://duckduckgo.com/y.js?ad_domain=shop.example">Great deals.</a>
        <div class="clear"></div>
      </div>
    </div>
"""  # noqa: E501 - real result markup has long lines
RESULT = """
    <div class="result results_links results_links_deep web-result ">
      <div class="links_main links_deep result__body"> <!-- This is the visible part -->
        <h2 class="result__title">
          <a rel="nofollow" class="result__a" href="{href}">{title}</a>
        </h2>
        <div class="result__extras">
          <div class="result__extras__url">
            <span class="result__icon">
              <a rel="nofollow" href="{href}">
                <img class="result__icon__img" width="16" height="16" alt=""
                  src="//external-content.duckduckgo.com/ip3/{domain}.ico" name="i15" />
              </a>
            </span>
            <a class="result__url" href="{href}">{shown}</a>
          </div>
        </div>
        <a class="result__snippet" href="{href}">{snippet}</a>
        <div class="clear"></div>
      </div>
    </div>
"""
TAIL = """
    <div class="nav-link">
      <form action="/html/" method="post">
        <input type="submit" class='btn btn--alt' value="Next" />
        <input type="hidden" name="q" value="{query}" />
        <input type="hidden" name="s" value="10" />
        <input type="hidden" name="nextParams" value="" />
        <input type="hidden" name="v" value="l" />
        <input type="hidden" name="o" value="json" />
        <input type="hidden" name="dc" value="11" />
        <input type="hidden" name="api" value="d.js" />
        <input type="hidden" name="vqd" value="4-211447496419893484327658726436410898211" />
        <input name="kl" value="wt-wt" type="hidden" />
      </form>
    </div>
    <div class=" feedback-btn"><a rel="nofollow" href="//duckduckgo.com/feedback.html"
      target="_new">Feedback</a></div>
    <div class="clear"></div>
  </div></div></div>
</body>
</html>
"""
NO_RESULTS = """
    <div class="result results_links results_links_deep web-result result--no-result">
      <div class="no-results">No  results.</div>
    </div>
"""
CHALLENGE = """<!DOCTYPE html><html lang="en-US"><head><title>DuckDuckGo</title></head>
<body><div class="anomaly-modal__mask">
<div class="anomaly-modal__modal" data-testid="anomaly-modal">
  <div class="anomaly-modal__title">Unfortunately, bots use DuckDuckGo too.</div>
  <div class="anomaly-modal__description">Please complete the following challenge to confirm
    this search was made by a human.</div>
  <form id="challenge-form" action="//duckduckgo.com/anomaly.js?sv=html&amp;cc=sre&amp;ti=1"
    method="POST"><input type="hidden" name="challenge" value="x" /></form>
</div></div></body></html>
"""


def wrapped(url: str) -> str:
    """A result link as DuckDuckGo writes it: its redirect, with the real URL in uddg=."""
    return f"//duckduckgo.com/l/?uddg={quote(url, safe='')}&amp;rut=4b2f3a9c0d"


def result(url: str, title: str, snippet: str, href: str | None = None) -> str:
    domain = url.split("/")[2]
    shown = url.split("://", 1)[1]
    return RESULT.format(href=href or wrapped(url), title=title, snippet=snippet,
                         domain=domain, shown=shown)  # fmt: skip


def results_page(query: str, *blocks: str) -> str:
    return HEAD.format(query=query) + "".join(blocks) + TAIL.format(query=query)


PYTHON_RESULTS = [
    ("https://docs.python.org/3/library/asyncio.html",
     "asyncio — Asynchronous I/O — Python 3.13 documentation",
     "<b>asyncio</b> is a library to write <b>concurrent</b> code using the async/await syntax."),
    ("https://realpython.com/async-io-python/?utm=x&a=b",
     "Async IO in Python: A Complete Walkthrough – Real Python",
     "This tutorial will give you a firm grasp of <b>Python</b>&#x27;s approach to async IO."),
    ("https://stackoverflow.com/questions/50757497/simplest-async-await-example",
     "Simplest async/await example possible in Python - Stack Overflow",
     "I&#x27;ve read many examples, blog posts, questions/answers about asyncio..."),
]  # fmt: skip


@pytest.fixture
def ddg() -> Iterator[WebServer]:
    with WebServer() as web:
        yield web


def tool(server: WebServer, **kwargs: Any) -> WebSearch:
    return WebSearch(base_url=server.url("/html/"), **kwargs)


async def search(server: WebServer, ctx: ToolContext, **args: Any) -> ToolResult:
    return await tool(server).run(ctx, args)


async def test_results_are_read_unwrapped_and_ads_skipped(ddg: WebServer, ctx: ToolContext) -> None:
    blocks = [result(*r) for r in PYTHON_RESULTS]
    ddg.pages["/html/"] = Page(results_page("python asyncio", AD, *blocks))
    found = await search(ddg, ctx, query="  python   asyncio ")
    assert found.ok
    assert found.output == (
        "Results for 'python asyncio':\n"
        "\n1. asyncio — Asynchronous I/O — Python 3.13 documentation\n"
        "   https://docs.python.org/3/library/asyncio.html\n"
        "   asyncio is a library to write concurrent code using the async/await syntax.\n"
        "\n2. Async IO in Python: A Complete Walkthrough – Real Python\n"
        "   https://realpython.com/async-io-python/?utm=x&a=b\n"
        "   This tutorial will give you a firm grasp of Python's approach to async IO.\n"
        "\n3. Simplest async/await example possible in Python - Stack Overflow\n"
        "   https://stackoverflow.com/questions/50757497/simplest-async-await-example\n"
        "   I've read many examples, blog posts, questions/answers about asyncio..."
    )
    (request,) = ddg.requests
    assert request.method == "POST"
    assert request.form == {"q": "python asyncio", "b": ""}
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "Koda/" in request.headers["user-agent"]


async def test_max_results_and_duplicates(ddg: WebServer, ctx: ToolContext) -> None:
    blocks = [result(f"https://example.com/{n}", f"Page {n}", f"Snippet {n}") for n in range(30)]
    blocks.insert(1, result("https://example.com/0", "Page 0 again", "dup"))
    ddg.pages["/html/"] = Page(results_page("pages", *blocks))
    default = await search(ddg, ctx, query="pages")
    assert [line for line in default.output.splitlines() if line[:1].isdigit()] == [
        f"{n + 1}. Page {n}" for n in range(8)
    ]
    assert (await search(ddg, ctx, query="pages", max_results="2")).output.count("\n   http") == 2
    most = await search(ddg, ctx, query="pages", max_results=MAX_RESULTS)
    assert f"{MAX_RESULTS}. Page {MAX_RESULTS - 1}\n" in most.output


async def test_direct_links_and_links_that_cannot_be_used(ddg: WebServer, ctx: ToolContext) -> None:
    ddg.pages["/html/"] = Page(results_page(
        "mixed",
        result("https://direct.example/a", "Direct", "kept", href="https://direct.example/a"),
        result("https://x.example/", "Script", "dropped", href="javascript:void(0)"),
        result("https://y.example/", "", "no title, dropped"),
        result("https://z.example/", "Redirect without target", "dropped",
               href="//duckduckgo.com/l/?rut=abc"),
    ))  # fmt: skip
    found = await search(ddg, ctx, query="mixed")
    assert found.output == "Results for 'mixed':\n\n1. Direct\n   https://direct.example/a\n   kept"


async def test_long_snippets_are_cut_at_a_word(ddg: WebServer, ctx: ToolContext) -> None:
    snippet = "word " * 200
    ddg.pages["/html/"] = Page(results_page("long", result("https://a.example/", "A", snippet)))
    line = (await search(ddg, ctx, query="long")).output.splitlines()[-1]
    assert line.endswith("word…") and len(line) < 310


async def test_no_results_is_an_answer_not_an_error(ddg: WebServer, ctx: ToolContext) -> None:
    ddg.pages["/html/"] = Page(results_page("qwxzv plorkt", NO_RESULTS))
    found = await search(ddg, ctx, query="qwxzv plorkt")
    assert found.ok
    assert found.output == "No results for 'qwxzv plorkt'. Try fewer or other words."


@pytest.mark.parametrize(("page", "why"), [
    (Page(CHALLENGE, status=202), "it asked for a CAPTCHA"),
    (Page(CHALLENGE, status=200), "it asked for a CAPTCHA"),
    (Page("", status=202), "HTTP 202"),
    (Page("Too Many Requests", status=429, content_type="text/plain"), "HTTP 429"),
    (Page("Forbidden", status=403, content_type="text/plain"), "HTTP 403"),
])  # fmt: skip
async def test_rate_limiting_is_named(
    ddg: WebServer, ctx: ToolContext, page: Page, why: str
) -> None:
    ddg.pages["/html/"] = page
    with pytest.raises(
        ToolError, match=f"DuckDuckGo is limiting searches from this machine \\({why}"
    ):
        await search(ddg, ctx, query="python")


async def test_server_errors_and_unreadable_pages(ddg: WebServer, ctx: ToolContext) -> None:
    ddg.pages["/html/"] = Page("<h1>Internal Server Error</h1>", status=500)
    with pytest.raises(ToolError, match=r"DuckDuckGo answered HTTP 500; try again later\."):
        await search(ddg, ctx, query="python")
    ddg.pages["/html/"] = Page("<html><body><div class='new-layout'>Results</div></body></html>")
    with pytest.raises(ToolError, match="page layout may have changed"):
        await search(ddg, ctx, query="python")
    ddg.pages["/html/"] = Page(json.dumps({"results": []}), content_type="application/json")
    with pytest.raises(ToolError, match="page layout may have changed"):
        await search(ddg, ctx, query="python")


async def test_redirects_are_followed(ddg: WebServer, ctx: ToolContext) -> None:
    ddg.pages["/html/"] = Page("", status=307, headers={"Location": "/html2/"})
    ddg.pages["/html2/"] = Page(results_page("q", result("https://a.example/", "A", "s")))
    assert "1. A\n" in (await search(ddg, ctx, query="q")).output
    assert [r.path for r in ddg.requests] == ["/html/", "/html2/"]


async def test_network_failure_and_timeout(ddg: WebServer, ctx: ToolContext) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/html/"
    with pytest.raises(ToolError, match="Could not reach DuckDuckGo: "):
        await WebSearch(base_url=closed).run(ctx, {"query": "python"})
    ddg.pages["/html/"] = Page(results_page("q"), delay=2)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"DuckDuckGo did not answer within 0.5 s\."):
        await tool(ddg, timeout=0.5).run(ctx, {"query": "python"})
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(("args", "message"), [
    ({}, "Missing required argument 'query'"),
    ({"query": "   "}, "'query' must not be empty"),
    ({"query": 42}, "'query' must be a string"),
    ({"query": "x", "max_results": 0}, "'max_results' must be at least 1"),
    ({"query": "x", "max_results": MAX_RESULTS + 1}, f"must be at most {MAX_RESULTS}"),
    ({"query": "x", "max_results": "many"}, "'max_results' must be an integer"),
    ({"query": "word " * 120}, "The query is 599 characters; keep it under 500."),
])  # fmt: skip
async def test_argument_errors(
    ddg: WebServer, ctx: ToolContext, args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        await search(ddg, ctx, **args)
    assert ddg.requests == []


@pytest.mark.parametrize(("href", "url"), [
    ("//duckduckgo.com/l/?uddg=https%3A%2F%2Fa.example%2Fx%3Fy%3D1%26z%3D2&rut=1",
     "https://a.example/x?y=1&z=2"),
    ("https://duckduckgo.com/l/?uddg=http%3A%2F%2Fb.example%2F", "http://b.example/"),
    ("/l/?uddg=https%3A%2F%2Fc.example%2F&rut=9", "https://c.example/"),
    ("https://d.example/page", "https://d.example/page"),
    ("https://duckduckgo.com/y.js?ad_domain=shop.example", None),
    ("//duckduckgo.com/l/?uddg=javascript%3Aalert(1)", None),
    ("mailto:someone@example.com", None),
])  # fmt: skip
def test_unwrap(href: str, url: str | None) -> None:
    assert unwrap(href) == url


def test_the_challenge_page_is_recognised_without_results() -> None:
    page = parse_results(CHALLENGE)
    assert page.challenge and page.results == [] and not page.says_no_results


def test_effect_summary_and_definition_size() -> None:
    web = WebSearch()
    assert web.effect({"query": "x"}) is Effect.READ_ONLY
    assert web.summary({"query": "python asyncio"}) == "WebSearch: python asyncio"
    definition = {"name": web.name, "description": web.description, "parameters": web.parameters}
    assert len(json.dumps(definition)) < 500


def test_requests_record_forms() -> None:
    # The fake's own parsing, which the tests above rely on.
    request = Request("POST", "/html/", {}, b"q=a+b&b=")
    assert request.form == {"q": "a b", "b": ""}
