"""Every user-facing string in the code and templates has its Chinese translation."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
METHODS = [("school/**.py", "python"), ("templates/**.html", "jinja2")]


def test_every_string_is_translated_to_chinese():
    catalog = read_po((ROOT / "school/translations/zh/LC_MESSAGES/messages.po").open("rb"))
    missing = []
    for folder in ("school", "templates"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder,
            method_map=[
                (pattern.split("/", 1)[1], method)
                for pattern, method in METHODS
                if pattern.startswith(folder)
            ],
            keywords={"_": None, "_l": None, "gettext": None, "lazy_gettext": None},
        ):
            msgid = message[0] if isinstance(message, tuple) else message
            entry = catalog.get(msgid)
            if entry is None or not entry.string or entry.fuzzy:
                missing.append(msgid)
    assert missing == []


def test_the_catalogue_compiles_without_placeholder_errors():
    """What `pybabel compile` checks (a msgid read as python-format whose translation lacks the
    same placeholders stops `make run`)."""
    catalog = read_po((ROOT / "school/translations/zh/LC_MESSAGES/messages.po").open("rb"))
    problems = [(message.id, [str(e) for e in errors]) for message, errors in catalog.check()]
    assert problems == []
