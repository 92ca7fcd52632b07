"""Writing report tables as CSV and XLSX, with spreadsheet formulas made inert."""

import csv
import io
from collections.abc import Callable
from urllib.parse import quote

from openpyxl import Workbook

from school.reports.service import Table

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Sheets (CSV or
# formula injection); a leading apostrophe makes it plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(value):
    """The value, with text that a spreadsheet would run as a formula prefixed by a '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# An export reports progress (rows written) this often, when asked to.
TICK_ROWS = 2000


def to_csv(tables: list[Table], progress: Callable[[int], None] | None = None) -> bytes:
    """UTF-8 CSV with a BOM (so Excel reads Chinese), tables one after another, a blank line apart.

    `progress(rows)` is called every TICK_ROWS rows written (export jobs show it)."""
    out = io.StringIO()
    writer = csv.writer(out)
    for n, table in enumerate(tables):
        if n:
            writer.writerow([])
        writer.writerow([inert(table.title)])
        writer.writerow([inert(h) for h in table.headers])
        for n, row in enumerate(table.rows, 1):
            writer.writerow([inert(cell) for cell in row])
            if progress and n % TICK_ROWS == 0:
                progress(TICK_ROWS)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(tables: list[Table], progress: Callable[[int], None] | None = None) -> bytes:
    """An XLSX workbook with one sheet per table (write-only mode: streams, low memory)."""
    book = Workbook(write_only=True)
    for table in tables:
        sheet = book.create_sheet(title=table.title[:31])
        sheet.append([inert(h) for h in table.headers])
        for n, row in enumerate(table.rows, 1):
            sheet.append([inert(cell) for cell in row])
            if progress and n % TICK_ROWS == 0:
                progress(TICK_ROWS)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def disposition(filename: str) -> str:
    """Content-Disposition for a download with a Chinese name (RFC 5987, with an ASCII fallback)."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in ".-_") else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
