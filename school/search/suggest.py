"""“您是不是要找”: a query with one wrong character (防滩预警, 三会二课), corrected to a known term.

Members type with pinyin input methods, so the usual mistake is a whole wrong character of the same
sound, not a wrong letter. The known terms are the party-work dictionary (content/search/userdict.txt)
and the words of the indexed titles. A term of three or more characters that differs from a stretch
of the query in exactly one character is a candidate; shorter words are left alone, where one
character is half the word. The caller only offers a correction that finds something.
"""

import os
import re
import threading

from school.search import analysis, index

MIN_LENGTH = 3
_RUN = re.compile(r"[^\W_]+")  # a run of letters, digits or CJK characters: corrections never span a gap
_lock = threading.Lock()
_cache: dict = {"key": None, "variants": {}}


def _dictionary_terms() -> list[str]:
    if not analysis.USER_DICT.exists():
        return []
    lines = analysis.USER_DICT.read_text(encoding="utf-8").splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def _variants(terms) -> dict[str, set[str]]:
    """Each term under every key with one of its characters blanked (防?预警 → {防瘫预警}), and
    under itself (防瘫预警 → {防瘫预警}): a stretch of the query that is a known term is no typo."""
    variants: dict[str, set[str]] = {}
    for term in terms:
        term = term.lower()
        if len(term) < MIN_LENGTH:
            continue
        variants.setdefault(term, set()).add(term)
        for i in range(len(term)):
            variants.setdefault(term[:i] + "\0" + term[i + 1 :], set()).add(term)
    return variants


def known_variants(searcher) -> dict[str, set[str]]:
    """The variant table of the dictionary and the live index's title words, built once per index
    generation (a few thousand terms, a few milliseconds)."""
    key = (os.path.realpath(index.current_path()), searcher.reader().generation())
    with _lock:
        if _cache["key"] != key:
            titles = (term.decode("utf-8") for term in searcher.lexicon("title"))
            _cache["variants"] = _variants([*_dictionary_terms(), *titles])
            _cache["key"] = key
        return _cache["variants"]


def corrections(
    text: str, variants: dict[str, set[str]], limit: int = 3, seen_pair=lambda pair: False
) -> list[str]:
    """Queries like `text` with one stretch replaced by a known term one character away, best
    (longest term) first. Only a stretch with a character pair the library never has (`seen_pair`
    false: 防滩, 会二) looks like a typo; 支部党员 is not corrected to 支部委员."""
    found: list[tuple[int, str]] = []
    lowered = text.lower()
    for run in _RUN.finditer(lowered):
        word = run.group()
        for size in range(min(len(word), 12), MIN_LENGTH - 1, -1):
            for start in range(len(word) - size + 1):
                window = word[start : start + size]
                if window in variants or all(seen_pair(window[j : j + 2]) for j in range(size - 1)):
                    continue  # a word the library knows, spelt right
                for i in range(size):
                    for term in variants.get(window[:i] + "\0" + window[i + 1 :], ()):
                        if term != window:
                            at = run.start() + start
                            found.append((size, text[:at] + term + text[at + size :]))
    seen: list[str] = []
    for _size, query in sorted(found, key=lambda item: -item[0]):
        if query not in seen:
            seen.append(query)
    return seen[:limit]
