"""Chinese text analysis for Whoosh: jieba in search mode with our dictionary, plus 1–2 char grams.

Whoosh's default analyzer keeps a run of Chinese characters as one token, so Chinese search
silently finds nothing without this. jieba is loaded once per process, with the party-work terms
of content/search/userdict.txt, so that 三会一课 or 防瘫预警 stay whole tokens.
"""

import logging
import re
import threading

import jieba
import opencc
from pypinyin import Style, lazy_pinyin
from whoosh.analysis import LowercaseFilter, NgramFilter, Token, Tokenizer

from school.settings import ROOT

USER_DICT = ROOT / "content" / "search" / "userdict.txt"
_lock = threading.Lock()
_loaded = False


def load_dictionary() -> None:
    """Load jieba and the user dictionary (once per process, ~0.5 s)."""
    global _loaded
    with _lock:
        if _loaded:
            return
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        if USER_DICT.exists():
            jieba.load_userdict(str(USER_DICT))
        _loaded = True


_WORD = re.compile(r"[^\W_]")  # a letter or digit of any script (CJK included)
# Chinese input methods type full-width letters, digits and spaces (ＰＰＴ, ２０２５年, 　): folded to
# ASCII one character for one, so stored character offsets (highlights) stay right.
_FULL_WIDTH = {0x3000: 0x20, **{code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}}


def fold_width(text: str) -> str:
    """Full-width ASCII forms as ASCII (ＰＰＴ → PPT); the length never changes."""
    return text.translate(_FULL_WIDTH)


_converters = threading.local()  # an OpenCC converter is not documented as thread-safe


def simplified(text: str) -> str:
    """Traditional characters as simplified (黨費 → 党费, 三會一課 → 三会一课): members typing with a
    traditional input method, or a handwriting pad set to it, find the library, which is simplified.
    Kept as typed in the rare case the conversion would change the length (offsets must hold)."""
    converter = getattr(_converters, "t2s", None)
    if converter is None:
        converter = _converters.t2s = opencc.OpenCC("t2s")
    try:
        converted = converter.convert(text)
    except UnicodeError:  # a lone surrogate (undecodable bytes in a query string): nothing to convert
        return text
    return converted if len(converted) == len(text) else text


def normalize(text: str) -> str:
    """What both documents and queries are cut from: full-width folded, traditional simplified."""
    return simplified(fold_width(text))


def _is_word(text: str) -> bool:
    return _WORD.search(text) is not None


class JiebaTokenizer(Tokenizer):
    """jieba's search-mode tokens (a long word and its parts), punctuation and spaces dropped."""

    def __call__(
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        mode="",
        **kwargs,
    ):
        load_dictionary()
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for pos, (word, start, end) in enumerate(jieba.tokenize(normalize(value), mode="search")):
            if not _is_word(word):
                continue
            token.text = word.strip()
            if not token.text:
                continue
            token.boost = 1.0
            if keeporiginal:
                token.original = token.text
            token.stopped = False
            if positions:
                token.pos = start_pos + pos
            if chars:
                token.startchar, token.endchar = start_char + start, start_char + end
            yield token


def known_word(word: str) -> bool:
    """Whether jieba knows the word as a whole (then grams add nothing after a miss)."""
    load_dictionary()
    return len(word) > 1 and bool(jieba.dt.FREQ.get(word))


def chinese_analyzer():
    """Words: jieba search mode, lower-cased (so PPT matches ppt)."""
    return JiebaTokenizer() | LowercaseFilter()


def words(text: str) -> list[str]:
    """The distinct word tokens of a text, in order."""
    seen: list[str] = []
    for token in chinese_analyzer()(text):
        if token.text not in seen:
            seen.append(token.text)
    return seen


_WORD_RUN = re.compile(r"[^\W_]+")


class GramJoiner(Tokenizer):
    """Runs of word characters (spaces and punctuation dropped), so grams never span a gap; with
    their offsets, so a hit found by its grams can be highlighted too."""

    def __call__(self, value, positions=False, chars=False, start_pos=0, start_char=0, **kwargs):
        token = Token(positions, chars, **{k: v for k, v in kwargs.items() if k in ("removestops", "mode")})
        for pos, run in enumerate(_WORD_RUN.finditer(normalize(value))):
            token.text, token.boost, token.stopped = run.group(), 1.0, False
            if positions:
                token.pos = start_pos + pos
            if chars:
                token.startchar, token.endchar = start_char + run.start(), start_char + run.end()
            yield token


def gram_analyzer():
    """Overlapping 1–2 character grams: finds single characters and words jieba splits oddly."""
    return GramJoiner() | LowercaseFilter() | NgramFilter(minsize=1, maxsize=2)


def grams(text: str) -> list[str]:
    """The 2-grams of a query (its single character when it has only one)."""
    kept = "".join(ch.lower() for ch in normalize(text) if _is_word(ch))
    if len(kept) <= 1:
        return [kept] if kept else []
    # A doubled character (党党, a key pressed twice) is searched as the one character.
    pairs = (kept[i : i + 2] for i in range(len(kept) - 1))
    return list(dict.fromkeys(pair[0] if pair[0] == pair[1] else pair for pair in pairs))


HAN_RUN = re.compile(r"[\u3400-\u9fff]+")  # Chinese characters


def title_pinyin(title: str) -> str:
    """A title as members may type it without an input method: full pinyin and initials of each
    run of Chinese characters and of all of them (「三会一课」怎么开好 → sanhuiyike shyk
    zenmekaihao zmkh sanhuiyikezenmekaihao shykzmkh), space separated, for prefix matching."""
    runs = HAN_RUN.findall(title or "")
    if not runs:
        return ""
    forms = []
    for run in [*runs, "".join(runs)] if len(runs) > 1 else runs:
        forms.append("".join(lazy_pinyin(run)))
        forms.append("".join(lazy_pinyin(run, style=Style.FIRST_LETTER)))
    return " ".join(dict.fromkeys(forms))
