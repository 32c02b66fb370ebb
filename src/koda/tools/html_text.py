"""HTML to readable Markdown for WebFetch: headings, links, lists, code blocks, rough tables.

A small tree is built with the standard library's tolerant html.parser (implied end tags of
p, li, td and friends closed the way browsers do), the page's main content is picked (<main>,
else a lone <article>, else <body>), and rendered; scripts, styles, navigation, forms' controls
and hidden elements are left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
SKIPPED = frozenset(
    {
        "head",
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "nav",
        "footer",
        "iframe",
        "canvas",
        "button",
        "select",
        "textarea",
        "object",
        "embed",
        "dialog",
        "map",
    }
)
BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hgroup", "hr", "html", "li", "main", "menu", "ol", "p", "pre", "search",
    "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})  # fmt: skip
# Which open element a new tag closes implicitly (with everything opened inside it), unless
# one of the boundary tags is found first, looking from the innermost open element out.
_IMPLIED_END: dict[str, tuple[Set[str], Set[str]]] = {
    "li": ({"li"}, {"ul", "ol", "menu"}),
    "dt": ({"dt", "dd"}, {"dl"}),
    "dd": ({"dt", "dd"}, {"dl"}),
    "tr": ({"tr"}, {"table"}),
    "td": ({"td", "th"}, {"tr", "table"}),
    "th": ({"td", "th"}, {"tr", "table"}),
    "thead": ({"thead", "tbody", "tfoot"}, {"table"}),
    "tbody": ({"thead", "tbody", "tfoot"}, {"table"}),
    "tfoot": ({"thead", "tbody", "tfoot"}, {"table"}),
    "option": ({"option"}, {"select"}),
}
_P_SCOPE = frozenset({"div", "li", "td", "th", "blockquote", "section", "article", "body", "main"})
# Deeper nesting is flattened into the node at this depth, which keeps rendering's recursion
# far from Python's limit on hostile pages.
MAX_DEPTH = 100
HARD_BREAK = "\x00"  # a <br> inside text, kept through whitespace folding


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)


_Match = Callable[[Node], bool]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._close_implied(tag)
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID and len(self.stack) < MAX_DEPTH:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._close_implied(tag)
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag == "br":  # browsers read a stray </br> as <br>
            self.stack[-1].children.append(Node("br"))
            return
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        children = self.stack[-1].children
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)

    def _close_implied(self, tag: str) -> None:
        closes: Set[str]
        boundary: Set[str]
        if tag in _IMPLIED_END:
            closes, boundary = _IMPLIED_END[tag]
        elif tag in BLOCKS:
            closes, boundary = {"p"}, _P_SCOPE
        else:
            return
        for depth in range(len(self.stack) - 1, 0, -1):
            open_tag = self.stack[depth].tag
            if open_tag in closes:
                del self.stack[depth:]
                return
            if open_tag in boundary:
                return


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def html_to_markdown(html: str, url: str = "") -> str:
    """Readable Markdown of a page; links are made absolute against `url` (or <base href>)."""
    root = parse(html)
    base = find(root, lambda n: n.tag == "base" and bool(n.attrs.get("href")))
    renderer = _Renderer(urljoin(url, base.attrs["href"]) if base else url)
    # An empty <main> (filled in by scripts) says nothing; the rest of the page may.
    content = renderer.blocks(_main_content(root)) or renderer.blocks(root)
    title_node = find(root, lambda n: n.tag == "title")
    title = plain_text(title_node) if title_node else ""
    if title and not content.startswith("# "):
        content = f"# {title}\n\n{content}" if content else f"# {title}"
    return re.sub(r"\n{3,}", "\n\n", content).strip()


def _main_content(root: Node) -> Node:
    main = find(root, lambda n: n.tag == "main" or n.attrs.get("role") == "main")
    if main is not None:
        return main
    articles = find_all(root, lambda n: n.tag == "article")
    if len(articles) == 1:
        return articles[0]
    return find(root, lambda n: n.tag == "body") or root


def _skipped(node: Node) -> bool:
    return (
        node.tag in SKIPPED
        or "hidden" in node.attrs
        or node.attrs.get("aria-hidden") == "true"
        or node.attrs.get("role") == "navigation"
    )


class _Renderer:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def blocks(self, node: Node, separator: str = "\n\n") -> str:
        """A node's children as Markdown blocks; runs of inline content become paragraphs."""
        parts: list[str] = []
        inline: list[str] = []

        def flush() -> None:
            text = _fold("".join(inline))
            if text:
                parts.append(text)
            inline.clear()

        for child in node.children:
            if isinstance(child, str):
                inline.append(child)
            elif _skipped(child):
                continue
            elif child.tag in BLOCKS:
                flush()
                block = self.block(child)
                if block:
                    parts.append(block)
            else:
                inline.append(self.inline(child))
        flush()
        return separator.join(parts)

    def block(self, node: Node) -> str:
        tag = node.tag
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            text = _fold(self.inline_children(node)).replace("\n", " ")
            return f"{'#' * int(tag[1])} {text}" if text else ""
        if tag == "pre":
            return _code_block(node)
        if tag in ("ul", "ol", "menu"):
            return self.items(node)
        if tag == "li":
            return _item("- ", self.blocks(node, "\n"))
        if tag == "blockquote":
            body = self.blocks(node)
            return "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
        if tag == "table":
            return self.table(node)
        if tag == "hr":
            return "---"
        if tag == "dl":
            return self.definitions(node)
        return self.blocks(node)

    def items(self, node: Node) -> str:
        ordered = node.tag == "ol"
        number = _int(node.attrs.get("start"), 1)
        items = []
        for child in node.children:
            if isinstance(child, str) or _skipped(child):
                continue  # whitespace between items
            body = self.blocks(child, "\n") if child.tag == "li" else self.block(child)
            if not body:
                continue
            items.append(_item(f"{number}. " if ordered else "- ", body))
            number += 1
        return "\n".join(items)

    def definitions(self, node: Node) -> str:
        lines = []
        for child in node.children:
            if isinstance(child, str) or _skipped(child):
                continue
            if child.tag == "dt":
                term = _fold(self.inline_children(child))
                lines.append(f"**{term}**" if term else "")
            else:
                lines.append(_item(": ", self.blocks(child, "\n")))
        return "\n".join(line for line in lines if line)

    def table(self, node: Node) -> str:
        rows = [
            [cell for cell in row.children if isinstance(cell, Node) and cell.tag in ("td", "th")]
            for row in _rows(node)
        ]
        rows = [row for row in rows if row]
        caption = find(node, lambda n: n.tag == "caption")
        title = _fold(self.inline_children(caption)) if caption else ""
        # Tables used for page layout hold paragraphs and lists, not data: render as blocks.
        if not rows or max(len(row) for row in rows) == 1 or _has_blocks(rows):
            body = "\n\n".join(text for row in rows for cell in row if (text := self.blocks(cell)))
            return "\n\n".join(part for part in (title, body) if part)
        width = max(len(row) for row in rows)
        lines = [self._row(row, width) for row in rows]
        lines.insert(1, "| " + " | ".join(["---"] * width) + " |")
        return "\n".join([title, *lines] if title else lines)

    def _row(self, cells: list[Node], width: int) -> str:
        texts = [
            _fold(self.inline_children(cell)).replace("\n", " ").replace("|", "\\|")
            for cell in cells
        ]
        return "| " + " | ".join(texts + [""] * (width - len(texts))) + " |"

    def inline_children(self, node: Node) -> str:
        return "".join(
            child if isinstance(child, str) else self.inline(child) for child in node.children
        )

    def inline(self, node: Node) -> str:
        tag = node.tag
        if _skipped(node):
            return ""
        if tag == "br":
            return HARD_BREAK
        if tag == "img":
            alt = _fold(node.attrs.get("alt", ""))
            src = node.attrs.get("src", "")
            return f"![{alt}]({urljoin(self.base_url, src)})" if alt and src else alt
        text = self.inline_children(node)
        if tag == "a":
            return self.link(node, text)
        if tag in ("code", "kbd", "samp", "tt"):
            return _code_span(text)
        if tag in ("strong", "b"):
            return _wrap(text, "**")
        if tag in ("em", "i"):
            return _wrap(text, "*")
        if tag in BLOCKS:  # a block inside inline content: keep its words apart
            return f" {text} "
        return text

    def link(self, node: Node, text: str) -> str:
        href = node.attrs.get("href", "").strip()
        label = _fold(text).replace("\n", " ")
        if not label:
            return ""
        if not href or href.startswith("#") or href.lower().startswith(("javascript:", "data:")):
            return text
        return f"[{label}]({urljoin(self.base_url, href)})"


def _rows(table: Node) -> list[Node]:
    """The table's rows in order, not those of tables nested in its cells."""
    rows: list[Node] = []
    for child in table.children:
        if isinstance(child, Node):
            if child.tag == "tr":
                rows.append(child)
            elif child.tag in ("thead", "tbody", "tfoot"):
                rows.extend(_rows(child))
    return rows


def _has_blocks(rows: list[list[Node]]) -> bool:
    layout = {"table", "p", "div", "ul", "ol", "pre", "h1", "h2", "h3", "blockquote"}
    return any(find(cell, lambda n: n.tag in layout) is not None for row in rows for cell in row)


def _code_block(node: Node) -> str:
    text = _text(node).removeprefix("\n").rstrip()
    if not text:
        return ""
    code = find(node, lambda n: n.tag == "code")
    classes = node.attrs.get("class", "") + " " + (code.attrs.get("class", "") if code else "")
    match = re.search(r"\b(?:language|lang)-([\w+#.-]+)", classes)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{match.group(1) if match else ''}\n{text}\n{fence}"


def _code_span(text: str) -> str:
    text = _fold(text).replace("\n", " ")
    if not text:
        return ""
    tick = "``" if "`" in text else "`"
    return f"{tick}{text}{tick}"


def _wrap(text: str, mark: str) -> str:
    """Emphasis around the words, spaces kept outside so the Markdown still parses."""
    core = text.strip()
    if not core:
        return text
    lead = " " if text[0].isspace() else ""
    trail = " " if text[-1].isspace() else ""
    return f"{lead}{mark}{core}{mark}{trail}"


def _item(marker: str, body: str) -> str:
    lines = body.splitlines() or [""]
    indent = " " * len(marker)
    rest = [f"{indent}{line}" if line else "" for line in lines[1:]]
    return "\n".join([f"{marker}{lines[0]}", *rest])


def plain_text(node: Node) -> str:
    """A node's text on one line, whitespace folded as a browser shows it."""
    return _fold(_text(node)).replace("\n", " ")


def _text(node: Node) -> str:
    """All text under a node as written (for <pre> and <title>), <br> as a newline."""
    parts: list[str] = []
    for child in node.children:
        if isinstance(child, str):
            parts.append(child)
        elif child.tag == "br":
            parts.append("\n")
        elif child.tag not in SKIPPED:
            parts.append(_text(child))
    return "".join(parts)


def _fold(text: str) -> str:
    """Whitespace runs to one space (HTML's rule); <br> breaks kept as newlines."""
    text = re.sub(r"[ \t\n\r\f\v\xa0]+", " ", text)
    text = re.sub(f" ?{HARD_BREAK}+ ?", lambda m: "\n" * min(2, m.group().count(HARD_BREAK)), text)
    return text.strip(" ").strip("\n")


def find(node: Node, match: _Match) -> Node | None:
    """The first node under `node`, in document order, that `match` accepts."""
    for child in node.children:
        if isinstance(child, Node):
            if match(child):
                return child
            found = find(child, match)
            if found is not None:
                return found
    return None


def find_all(node: Node, match: _Match) -> list[Node]:
    """Every node under `node` that `match` accepts, in document order."""
    found: list[Node] = []
    for child in node.children:
        if isinstance(child, Node):
            if match(child):
                found.append(child)
            found.extend(find_all(child, match))
    return found


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
