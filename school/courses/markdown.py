"""Lesson text: Markdown to HTML that is safe to put in a page.

markdown-it-py (CommonMark, raw HTML off) writes the HTML; nh3 then keeps only an allow-list, so
even a parser bug cannot let script, styles, frames or event handlers through.
"""

import re
from urllib.parse import unquote

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

# breaks: a single newline is a line break, as people writing Chinese prose expect.
_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False, "breaks": True})
_md.enable("table")

_TAGS = {
    "p", "br", "strong", "em", "ul", "ol", "li", "h2", "h3", "h4", "blockquote", "code", "pre",
    "a", "img", "table", "thead", "tbody", "tr", "th", "td", "hr",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
}  # no style: the site's CSP refuses inline styles anyway (table alignment is lost, on purpose)
# The page title is the h1; lesson headings live below it, and h5/h6 read like body text on a phone.
_HEADING_LEVEL = {"h1": "h2", "h5": "h4", "h6": "h4"}
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def render(text: str) -> Markup:
    """Lesson Markdown as sanitized HTML: basic formatting, links, same-site images, tables."""
    tokens = _md.parse(text or "")
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = _HEADING_LEVEL.get(token.tag, token.tag)
        for i, child in enumerate(token.children or []):
            if child.type == "image" and not _same_site_image(str(child.attrGet("src") or "")):
                # An image we will not load reads as its description instead of a broken icon.
                alt = _md.renderer.renderInlineAsText(child.children or [], _md.options, {})
                token.children[i] = Token("text", "", 0, content=alt)
    html = _md.renderer.render(tokens, _md.options, {})
    clean = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style"},
        attributes=_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(clean)  # noqa: S704 # nosec B704 # the output of nh3's allow-list


def plain_text(text: str) -> str:
    """Lesson Markdown as the words a reader sees, one line per paragraph, heading or cell (for
    search and its snippets): **简洁**：PPT reads 简洁：PPT, not 简洁 with stray marks around it."""
    lines = []
    for token in _md.parse(text or ""):
        if token.type == "inline":
            lines.append(_inline_text(token.children or []))
        elif token.type in ("code_block", "fence"):
            lines.append(token.content.strip())
    return "\n".join(line for line in lines if line.strip())


def _inline_text(children: list[Token]) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(_inline_text(child.children or []))
    return "".join(parts)


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if _same_site_image(value) else None
    return value


def _same_site_image(src: str) -> bool:
    # Images from elsewhere would tell another server who reads which lesson (and break offline);
    # `..` could point a GET at any page of ours, e.g. one that signs the reader out.
    if not src or any(ch.isspace() or ch == "\\" or ord(ch) < 32 for ch in src):
        return False
    path = src.split("#", 1)[0].split("?", 1)[0]
    if ".." in unquote(path).split("/"):
        return False
    if src.startswith("/"):
        return src.startswith("/media/")
    return not _SCHEME.match(src)
