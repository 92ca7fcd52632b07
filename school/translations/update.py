"""Fill the Chinese catalogue from the extracted template: `python -m school.translations.update`.

The folder is zh because Babel looks zh_CN up as zh_Hans_CN, then zh.

Extract first (make translations). Keeps existing translations, adds new ids, reports missing ones.
"""

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).parent
PO = HERE / "zh" / "LC_MESSAGES" / "messages.po"


def main() -> int:
    template = read_po((HERE / "messages.pot").open("rb"))
    catalog = read_po(PO.open("rb"), locale="zh_CN") if PO.exists() else None
    if catalog is None:
        from babel.messages.catalog import Catalog

        catalog = Catalog(locale="zh_CN", project="school")
    catalog.update(template, no_fuzzy_matching=True)
    catalog.fuzzy = False
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as handle:
        write_po(handle, catalog, omit_header=False, no_location=True, width=100)
    missing = [m.id for m in catalog if m.id and not m.string]
    for msgid in missing:
        print(f"untranslated: {msgid}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
