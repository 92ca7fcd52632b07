"""Uploaded documents: what a file really is, its text for search, and safe download headers.

The kind always comes from the bytes, never from the name. Parsing runs in a spawned child with a
wall-clock and memory limit, so a zip bomb or a pathological PDF costs one child, not the worker.
"""

import dataclasses
import logging
import multiprocessing
import os
import re
import time
import unicodedata
import warnings
import zipfile
from urllib.parse import quote

KINDS = ("pdf", "docx", "pptx", "xlsx", "image")

# Kinds a browser may show in the page: they cannot run script in our origin (no SVG, no HTML).
INLINE_SAFE = frozenset({"pdf", "image"})

MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# The main part's content type in [Content_Types].xml; macro-enabled files (.docm, .xlsm …) differ
# and so are not accepted.
_OFFICE_MAIN = {
    "docx": ("word/", b"wordprocessingml.document.main+xml"),
    "pptx": ("ppt/", b"presentationml.presentation.main+xml"),
    "xlsx": ("xl/", b"spreadsheetml.sheet.main+xml"),
}

# Uncompressed size an office file may declare before we refuse to open it (zip bomb guard).
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
# Address space of the extraction child; parsers that need more fail there with MemoryError.
MAX_MEMORY_BYTES = 1024 * 1024 * 1024
# Spreadsheets: rows and columns read per sheet; a full sheet is data, not prose for search.
MAX_ROWS = 10_000
MAX_COLUMNS = 200
# Display names: UTF-8 bytes kept, well under the 255 bytes most file systems allow.
MAX_FILENAME_BYTES = 180

UNSUPPORTED_MESSAGE = "不支持的文件类型：只能上传 PDF、Word、PPT、Excel 或图片。"
_INVALID_MESSAGES = {
    "pdf": "这个文件不是有效的 PDF。",
    "docx": "这个文件不是有效的 Word 文档（.docx）。",
    "pptx": "这个文件不是有效的 PPT 演示文稿（.pptx）。",
    "xlsx": "这个文件不是有效的 Excel 表格（.xlsx）。",
    "image": "这个文件不是有效的图片（PNG、JPEG、WebP 或 GIF）。",
}
_TIMEOUT_MESSAGE = "读取这个文件用时过长，已停止。请检查文件是否损坏，或换一个文件。"
_TOO_LARGE_MESSAGE = "这个文件解压后太大，无法读取其中的文字。"
_MEMORY_MESSAGE = "这个文件太大或太复杂，读取时超出了内存限制，已停止。"
_ENCRYPTED_MESSAGE = "这个 PDF 设置了密码，无法读取其中的文字。请去掉密码后再上传。"


class DocumentRejected(Exception):
    """A file we will not accept or cannot read; `message` is for the uploader."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass
class Extracted:
    text: str
    pages: list[str]  # one entry per PDF page, slide or sheet (a Word file is one entry)
    truncated: bool = False


# --- what a file is -------------------------------------------------------------------------------


def sniff(path: str | os.PathLike) -> str | None:
    """The kind of the file at `path` from its bytes (one of KINDS), or None when not accepted."""
    return _sniff(path)[0]


def media_type(path: str | os.PathLike) -> str | None:
    """The Content-Type to serve the file at `path` with, from its bytes; None when not accepted."""
    kind, image_type = _sniff(path)
    return image_type if kind == "image" else MEDIA_TYPES.get(kind)


def _sniff(path) -> tuple[str | None, str | None]:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None, None
    if head.startswith(b"%PDF-"):
        return "pdf", None
    image_type = _image_type(head)
    if image_type:
        return "image", image_type
    if head.startswith(b"PK\x03\x04"):
        return _office_kind(path), None
    return None, None


def _image_type(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _office_kind(path) -> str | None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "[Content_Types].xml" not in names:
                return None
            with zf.open("[Content_Types].xml") as f:
                content_types = f.read(1024 * 1024)
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, ValueError, EOFError):
        return None
    found = [
        kind
        for kind, (folder, main_type) in _OFFICE_MAIN.items()
        if main_type in content_types and any(name.startswith(folder) for name in names)
    ]
    return found[0] if len(found) == 1 else None


# --- text -----------------------------------------------------------------------------------------


def extract_text(
    path: str | os.PathLike,
    kind: str,
    max_pages: int = 300,
    max_chars: int = 2_000_000,
    timeout: float = 60,
) -> Extracted:
    """The text of the document at `path` for search, within limits; DocumentRejected when unreadable."""
    if kind not in KINDS:
        raise DocumentRejected("unsupported", UNSUPPORTED_MESSAGE)
    if sniff(path) != kind:
        raise DocumentRejected("invalid", _INVALID_MESSAGES[kind])
    if kind == "image":
        return Extracted(text="", pages=[], truncated=False)
    if kind in _OFFICE_MAIN:
        _check_unpacked_size(path)
    result = _run_in_child(str(path), kind, max_pages, max_chars, timeout)
    if result[0] == "error":
        raise DocumentRejected(result[1], result[2])
    _, pages, truncated = result
    return Extracted(text="\n\n".join(pages), pages=pages, truncated=truncated)


def _check_unpacked_size(path) -> None:
    # The sizes in the central directory bound what zipfile will inflate (it stops there and then
    # fails the CRC), so adding them up is a cheap guard before any parser opens the file.
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
        total = 0  # sniff already opened it; let the parser report the fault
    if total > MAX_UNPACKED_BYTES:
        raise DocumentRejected("too_large", _TOO_LARGE_MESSAGE)


def _run_in_child(path: str, kind: str, max_pages: int, max_chars: int, timeout: float) -> tuple:
    # spawn: a fresh interpreter shares no threads, locks or database connections with the worker.
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_child_main, args=(sender, path, kind, max_pages, max_chars), name="extract-text", daemon=True
    )
    deadline = time.monotonic() + timeout
    child.start()
    sender.close()
    answered = False
    try:
        started = False
        while True:
            # Read before joining: a large result blocks the child's send until it is read.
            if not receiver.poll(max(deadline - time.monotonic(), 0)):
                raise DocumentRejected("timeout", _TIMEOUT_MESSAGE)
            try:
                message = receiver.recv()
            except EOFError:
                if not started:
                    # Our fault, not the file's (e.g. an unimportable __main__): say so loudly.
                    raise RuntimeError(f"text extraction child exited early ({child.exitcode})") from None
                # Died while parsing without a Python error: the memory limit hit inside a C parser.
                raise DocumentRejected("too_large", _MEMORY_MESSAGE) from None
            if message == "started":
                started = True
                continue
            answered = True
            return message
    finally:
        if answered:
            child.join(timeout=5)  # it only has to exit
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()


def _child_main(sender, path: str, kind: str, max_pages: int, max_chars: int) -> None:
    # Parser warnings about broken files would only clutter the worker's log; the result says it all.
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    try:
        sender.send("started")
    except OSError:
        return  # the parent has already given up
    _limit_memory(MAX_MEMORY_BYTES)
    try:
        pages, truncated = _EXTRACTORS[kind](path, _Budget(max_pages, max_chars))
        result = ("ok", pages, truncated)
    except DocumentRejected as rejected:
        result = ("error", rejected.code, rejected.message)
    except MemoryError:
        result = ("error", "too_large", _MEMORY_MESSAGE)
    except Exception:  # any parser fault on a hostile file is a refusal, not a crash
        # C parsers report a failed allocation as their own error (lxml: "unknown error").
        too_large = _peak_memory() > MAX_MEMORY_BYTES // 2
        result = (
            ("error", "too_large", _MEMORY_MESSAGE)
            if too_large
            else ("error", "invalid", _INVALID_MESSAGES[kind])
        )
    try:
        sender.send(result)
        sender.close()
    except OSError:
        pass  # the parent timed out meanwhile


def _limit_memory(limit: int) -> None:
    try:
        import resource
    except ImportError:  # not on POSIX: run with the timeout only
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _peak_memory() -> int:
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


class _Budget:
    """Counts pages and characters; says when to stop and whether anything was left out."""

    def __init__(self, max_pages: int, max_chars: int):
        self.max_pages = max_pages
        self.chars_left = max_chars
        self.pages: list[str] = []
        self.truncated = False

    @property
    def full(self) -> bool:
        return len(self.pages) >= self.max_pages or self.chars_left <= 0

    def add(self, text: str) -> None:
        text = text.strip()
        if len(text) > self.chars_left:
            text = text[: self.chars_left]
            self.truncated = True
        self.chars_left -= len(text)
        self.pages.append(text)

    def stop(self) -> tuple[list[str], bool]:
        """Called when a source still has pages left that will not be read."""
        self.truncated = True
        return self.result()

    def result(self) -> tuple[list[str], bool]:
        return self.pages, self.truncated


def _pdf_pages(path: str, budget: _Budget) -> tuple[list[str], bool]:
    from pypdf import PdfReader

    reader = PdfReader(path, strict=False)
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")  # many "protected" PDFs only restrict printing or copying
        except Exception:
            opened = 0
        if not opened:
            raise DocumentRejected("encrypted", _ENCRYPTED_MESSAGE)
    if len(reader.pages) == 0:
        raise DocumentRejected("invalid", _INVALID_MESSAGES["pdf"])
    for page in reader.pages:
        if budget.full:
            return budget.stop()
        budget.add(page.extract_text() or "")
    return budget.result()


def _docx_pages(path: str, budget: _Budget) -> tuple[list[str], bool]:
    import docx
    from docx.table import Table

    document = docx.Document(path)
    lines: list[str] = []
    size = 0
    for block in document.iter_inner_content():
        if size > budget.chars_left:
            budget.truncated = True
            break
        new = _table_lines(block) if isinstance(block, Table) else [block.text]
        lines.extend(new)
        size += sum(len(line) + 1 for line in new)
    budget.add("\n".join(line for line in lines if line.strip()))
    return budget.result()


def _table_lines(table) -> list[str]:
    lines = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans; keep it once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(cell.text.strip())
        lines.append("\t".join(cells))
    return lines


def _pptx_pages(path: str, budget: _Budget) -> tuple[list[str], bool]:
    from pptx import Presentation

    presentation = Presentation(path)
    for slide in presentation.slides:
        if budget.full:
            return budget.stop()
        parts = []
        for shape in slide.shapes:
            parts.extend(_shape_texts(shape))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            parts.append(slide.notes_slide.notes_text_frame.text)
        budget.add("\n".join(part for part in parts if part.strip()))
    return budget.result()


def _shape_texts(shape) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [text for child in shape.shapes for text in _shape_texts(child)]
    if shape.has_text_frame:
        return [shape.text_frame.text]
    if getattr(shape, "has_table", False) and shape.has_table:
        return ["\t".join(cell.text for cell in row.cells) for row in shape.table.rows]
    return []


def _xlsx_pages(path: str, budget: _Budget) -> tuple[list[str], bool]:
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        for sheet in workbook.worksheets:
            if budget.full:
                return budget.stop()
            lines, size = [], 0
            for count, row in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), 1):
                if count > MAX_ROWS or size > budget.chars_left:
                    budget.truncated = True
                    break
                values = [_cell_text(value) for value in row if value is not None]
                line = "\t".join(value for value in values if value)
                if line:
                    lines.append(line)
                    size += len(line) + 1
            budget.add("\n".join(lines))
        return budget.result()
    finally:
        workbook.close()


def _cell_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


_EXTRACTORS = {"pdf": _pdf_pages, "docx": _docx_pages, "pptx": _pptx_pages, "xlsx": _xlsx_pages}


# --- download names -------------------------------------------------------------------------------

_WINDOWS_RESERVED = re.compile(r'[<>:"|?*]')
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")


def safe_filename(name: str) -> str:
    """The uploader's file name cleaned for display and downloads; never to be used as a path."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Drops control and format characters: NUL, CR/LF (header injection), RTL overrides (spoofing).
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = _WINDOWS_RESERVED.sub("_", name).strip()
    stem, dot, extension = name.rpartition(".")
    if not dot or not _EXTENSION.fullmatch(extension):
        stem, extension = name, ""
    stem = stem.strip(" .")
    if not stem:
        stem = "文件"
    suffix = f".{extension}" if extension else ""
    room = MAX_FILENAME_BYTES - len(suffix.encode())
    stem = stem.encode()[:room].decode(errors="ignore").rstrip(" .") or "文件"
    return stem + suffix


def content_disposition(filename: str, inline: bool) -> str:
    """A Content-Disposition value (RFC 6266) with an ASCII fallback and the UTF-8 name (RFC 5987)."""
    name = safe_filename(filename)
    stem, dot, extension = name.rpartition(".")
    if not dot or not _EXTENSION.fullmatch(extension):
        stem, extension = name, ""
    fallback = (_ascii(stem) or "file") + (f".{extension}" if extension else "")
    disposition = "inline" if inline else "attachment"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9._ -]+", "_", text)
    return text.strip(" ._")
