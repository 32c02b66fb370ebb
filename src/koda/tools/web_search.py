"""WebSearch: web results from DuckDuckGo's HTML endpoint, which needs no API key.

The endpoint answers a form POST with a plain HTML page: each result is a `div.result` with
an `a.result__a` (title; its href is DuckDuckGo's redirect /l/?uddg=<real URL>), an
`a.result__url` (the URL as shown) and an `a.result__snippet`. Ads carry `result--ad`. When it
suspects a bot it answers 202 (or 403/429) with a `form#challenge-form` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from koda._version import __version__
from koda.tools.args import one_line, opt_int, req_str
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.html_text import Node, find, find_all, parse, plain_text
from koda.tools.schema import arguments, integer, string

DDG_URL = "https://html.duckduckgo.com/html/"
TIMEOUT = 15.0
DEFAULT_RESULTS = 8
MAX_RESULTS = 20
MAX_QUERY = 500  # DuckDuckGo refuses longer queries
SNIPPET_CHARS = 300
USER_AGENT = f"Mozilla/5.0 (compatible; Koda/{__version__})"
RATE_LIMITED = (
    "DuckDuckGo is limiting searches from this machine ({why}). Wait a minute before "
    "searching again, or WebFetch a page you already know."
)


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str


@dataclass
class ResultsPage:
    results: list[SearchResult]
    challenge: bool  # the bot check instead of results
    says_no_results: bool  # the page's own "No results." notice


class WebSearch:
    name = "WebSearch"
    description = (
        "Search the web (DuckDuckGo). Returns titles, URLs and snippets; "
        "read a result with WebFetch."
    )

    def __init__(self, base_url: str = DDG_URL, timeout: float = TIMEOUT) -> None:
        self.base_url = base_url  # tests point it at a local server
        self.timeout = timeout
        self.parameters: dict[str, Any] = arguments(
            ["query"],
            query=string("Search terms."),
            max_results=integer(f"Default {DEFAULT_RESULTS}, max {MAX_RESULTS}."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return f"WebSearch: {one_line(args.get('query', ''))}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        query = " ".join(req_str(args, "query", allow_empty=False).split())
        count = opt_int(args, "max_results", DEFAULT_RESULTS, min=1, max=MAX_RESULTS)
        if len(query) > MAX_QUERY:
            raise ToolError(f"The query is {len(query)} characters; keep it under {MAX_QUERY}.")
        status, html = await self._request(query)
        page = parse_results(html)
        if page.challenge or status in (202, 403, 429):
            why = "it asked for a CAPTCHA" if page.challenge else f"HTTP {status}"
            raise ToolError(RATE_LIMITED.format(why=why))
        if status >= 400:
            raise ToolError(f"DuckDuckGo answered HTTP {status}; try again later.")
        if not page.results:
            if page.says_no_results:
                return ToolResult(f"No results for {query!r}. Try fewer or other words.")
            raise ToolError(
                "DuckDuckGo's answer had no results in a form Koda could read "
                "(its page layout may have changed)."
            )
        return ToolResult(_format(query, page.results[:count]))

    async def _request(self, query: str) -> tuple[int, str]:
        import httpx2

        try:
            async with httpx2.AsyncClient(
                # The endpoint is fixed (not the model's choice): the user's proxy settings apply.
                trust_env=True,
                follow_redirects=True,
                timeout=httpx2.Timeout(self.timeout),
                headers={"User-Agent": USER_AGENT, "Referer": self.base_url},
            ) as client:
                response = await client.post(self.base_url, data={"q": query, "b": ""})
                return response.status_code, response.text
        except httpx2.TimeoutException as exc:
            raise ToolError(f"DuckDuckGo did not answer within {self.timeout:g} s.") from exc
        except httpx2.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise ToolError(f"Could not reach DuckDuckGo: {reason}.") from exc


def parse_results(html: str) -> ResultsPage:
    root = parse(html)
    challenge = find(root, lambda n: n.tag == "form" and n.attrs.get("id") == "challenge-form")
    no_results = find(root, lambda n: "no-results" in _classes(n))
    containers = find_all(root, lambda n: "result" in _classes(n))
    results: list[SearchResult] = []
    seen: set[str] = set()
    for container in containers:
        if "result--ad" in _classes(container):
            continue
        result = _result(container)
        if result is not None and result.url not in seen:
            seen.add(result.url)
            results.append(result)
    return ResultsPage(results, challenge is not None, no_results is not None)


def _result(container: Node) -> SearchResult | None:
    link = find(container, lambda n: "result__a" in _classes(n))
    if link is None:
        return None
    url = unwrap(link.attrs.get("href", ""))
    title = plain_text(link)
    if url is None or not title:
        return None
    snippet_node = find(container, lambda n: "result__snippet" in _classes(n))
    snippet = plain_text(snippet_node) if snippet_node else ""
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[:SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"
    return SearchResult(title, url, snippet)


def unwrap(href: str) -> str | None:
    """The real URL behind a result link (DuckDuckGo's /l/?uddg= redirect), None for ads."""
    absolute = urljoin("https://duckduckgo.com/", href.strip())
    parts = urlsplit(absolute)
    if parts.hostname and parts.hostname.endswith("duckduckgo.com"):
        if parts.path.rstrip("/") == "/l":
            absolute = parse_qs(parts.query).get("uddg", [""])[0]
        elif parts.path.startswith("/y.js"):
            return None  # an ad's click tracker
    return absolute if urlsplit(absolute).scheme in ("http", "https") else None


def _classes(node: Node) -> list[str]:
    return node.attrs.get("class", "").split()


def _format(query: str, results: list[SearchResult]) -> str:
    lines = [f"Results for {query!r}:"]
    for number, result in enumerate(results, 1):
        lines.append(f"\n{number}. {result.title}\n   {result.url}")
        if result.snippet:
            lines.append(f"   {result.snippet}")
    return "\n".join(lines)
