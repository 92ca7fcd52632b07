from html.parser import HTMLParser

import pytest
from markupsafe import Markup

from school.courses.markdown import render


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, {name: value or "" for name, value in attrs}))


def parse(html: str) -> list[tuple[str, dict[str, str]]]:
    """The real elements of `html` (escaped text is not an element) with their attributes."""
    parser = _Elements()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        "[点我](javascript:alert(1))",
        "[点我](JaVaScRiPt:alert(1))",
        '<a href="data:text/html;base64,PHNjcmlwdD4=">点我</a>',
        "[点我](data:text/html;base64,PHNjcmlwdD4=)",
        '<iframe src="https://evil.example/"></iframe>',
        "<style>body{display:none}</style>",
        '<p onclick="alert(1)">文字</p>',
    ],
)
def test_hostile_input_renders_inert(text):
    elements = parse(str(render(text)))
    assert {tag for tag, _ in elements} <= {"p", "a"}
    for _tag, attributes in elements:
        assert not any(name.startswith("on") for name in attributes)
        assert not attributes.get("href", "").lower().startswith(("javascript:", "data:"))


def test_raw_html_is_shown_as_text():
    assert str(render("<b>粗</b>")) == "<p>&lt;b&gt;粗&lt;/b&gt;</p>\n"


@pytest.mark.parametrize(
    "src",
    [
        "https://evil.example/track.png",
        "//evil.example/track.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "/accounts/sign-out",
        "../../sign-out",
        "/media/%2e%2e/sign-out",
    ],
)
def test_images_from_elsewhere_are_not_loaded(src):
    html = str(render(f"![示意图]({src})"))
    assert "<img" not in html and "示意图" in html


def test_same_site_images_are_kept():
    html = str(render("![示意图](/media/images/a.png) ![图二](images/b.png)"))
    assert '<img src="/media/images/a.png" alt="示意图">' in html
    assert '<img src="images/b.png" alt="图二">' in html


def test_links_get_rel_and_keep_safe_schemes():
    html = str(render("[官网](https://www.example.org/) [写信](mailto:a@example.org) [课程](/courses/1)"))
    assert html.count('rel="noopener noreferrer nofollow"') == 3
    assert 'href="https://www.example.org/"' in html
    assert 'href="mailto:a@example.org"' in html
    assert 'href="/courses/1"' in html


def test_normal_markdown_renders():
    html = str(
        render(
            "# 第一课\n\n**重点**和*说明*\n\n- 甲\n- 乙\n\n1. 一\n2. 二\n\n> 引文\n\n"
            "| 姓名 | 得分 |\n| --- | --- |\n| 张三 | 95 |\n\n`代码`\n\n---\n"
        )
    )
    for part in (
        "<h2>第一课</h2>",
        "<strong>重点</strong>",
        "<em>说明</em>",
        "<ul>\n<li>甲</li>",
        "<ol>\n<li>一</li>",
        "<blockquote>",
        "<th>姓名</th>",
        "<td>95</td>",
        "<code>代码</code>",
        "<hr>",
    ):
        assert part in html


def test_single_newline_is_a_line_break():
    assert str(render("第一行\n第二行")) == "<p>第一行<br>\n第二行</p>\n"


def test_render_returns_markup():
    assert isinstance(render("文字"), Markup)
    assert render("") == Markup("")


def test_links_with_other_schemes_lose_their_target():
    elements = parse(str(render("[下载](ftp://example.org/a) [电话](tel:10086)")))
    assert all("href" not in attributes for _tag, attributes in elements)
