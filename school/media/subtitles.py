"""Subtitles: SRT or WebVTT in (UTF-8 or GBK), plain-text cues out, and WebVTT for the player.

Lenient with what editors really write (CRLF, BOM, stray blank lines, `,` or `.` before the
milliseconds), strict with timings: a broken one is reported with its cue number and line.
"""

import dataclasses
import html
import re

MAX_BYTES = 2 * 1024 * 1024
MAX_CUES = 20_000

_TIMESTAMP = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})[,.](\d{3})"
_TIMING = re.compile(rf"^\s*{_TIMESTAMP}\s*-->\s*{_TIMESTAMP}(?:\s+.*)?$", re.ASCII)
# Markup inside cue text: HTML-ish tags (<i>, <c.yellow>, <00:01.000>) and ASS overrides ({\an8}).
_TAGS = re.compile(r"<[^<>\n]*>|\{\\[^{}\n]*\}")
_LOOKS_TIMED = re.compile(r"^\s*(?:\d+:)?\d+:\d+")
_VTT_HEADER = re.compile(r"^WEBVTT(?:[ \t].*)?$")
_VTT_SKIPPED_BLOCK = re.compile(r"^(?:NOTE|STYLE|REGION)(?:[ \t].*)?$")


class SubtitleRejected(Exception):
    """A subtitle file we cannot use; `message` tells the uploader what to fix."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


def parse(data: bytes) -> list[Cue]:
    """The cues of an SRT or WebVTT file, in file order; SubtitleRejected when it is not usable."""
    if len(data) > MAX_BYTES:
        raise SubtitleRejected("too_large", "字幕文件太大：最大 2 MB。")
    lines = _decode(data).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [line.rstrip() for line in lines]
    i = 0
    while i < len(lines) and not lines[i]:
        i += 1
    vtt = i < len(lines) and bool(_VTT_HEADER.match(lines[i]))
    if vtt:
        i = _skip_block(lines, i)
    cues: list[Cue] = []
    number = 0  # the cue's position in the file, as the uploader counts them
    while True:
        while i < len(lines) and not lines[i]:
            i += 1
        if i >= len(lines):
            break
        if vtt and _VTT_SKIPPED_BLOCK.match(lines[i]) and "-->" not in lines[i]:
            i = _skip_block(lines, i)
            continue
        number += 1
        if "-->" not in lines[i]:
            # The line before the timing is the cue's identifier (SRT's number, VTT's optional id).
            if i + 1 >= len(lines) or "-->" not in lines[i + 1]:
                _reject_unknown(lines, i, number)
            i += 1
        start_ms, end_ms = _timing(lines[i], number, i + 1)
        i += 1
        text_lines = []
        while i < len(lines) and lines[i] and not _starts_next_cue(lines, i):
            text_lines.append(lines[i])
            i += 1
        text = _clean_text(text_lines)
        if text:
            cues.append(Cue(start_ms, end_ms, text))
            if len(cues) > MAX_CUES:
                raise SubtitleRejected("too_many", f"字幕条数太多：最多 {MAX_CUES} 条。")
    if not cues:
        raise SubtitleRejected("empty", "字幕文件里没有找到任何字幕。请上传 SRT 或 WebVTT 格式的字幕。")
    return cues


def to_vtt(cues: list[Cue]) -> str:
    """A WebVTT document of the cues, ordered by start time as WebVTT requires."""
    blocks = ["WEBVTT"]
    for cue in sorted(cues, key=lambda cue: (cue.start_ms, cue.end_ms)):
        # A blank line would end the cue early; escaping ">" also keeps "-->" out of the text.
        text = "\n".join(_escape(line) for line in cue.text.split("\n") if line.strip())
        blocks.append(f"{_format(cue.start_ms)} --> {_format(cue.end_ms)}\n{text}".rstrip("\n"))
    return "\n\n".join(blocks) + "\n"


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        encodings = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16"]  # Windows Notepad's "Unicode"
    else:
        encodings = ["utf-8", "gb18030"]  # GB18030 is a superset of GBK and GB2312
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text.lstrip("\ufeff")
    raise SubtitleRejected("encoding", "无法识别字幕文件的编码：请另存为 UTF-8 编码后再上传。")


def _skip_block(lines: list[str], i: int) -> int:
    while i < len(lines) and lines[i]:
        i += 1
    return i


def _starts_next_cue(lines: list[str], i: int) -> bool:
    # Files with a missing blank line between cues: the next timing line (or its number) starts a cue.
    if "-->" in lines[i]:
        return True
    return lines[i].strip().isdigit() and i + 1 < len(lines) and "-->" in lines[i + 1]


def _reject_unknown(lines: list[str], i: int, number: int) -> None:
    # A mistyped arrow ("->") is still a timing line to the uploader: say it is the timing.
    for j in (i, i + 1):
        if j < len(lines) and _LOOKS_TIMED.match(lines[j]):
            raise SubtitleRejected(
                "timing", f"第 {number} 条字幕（第 {j + 1} 行）的时间格式不正确：{_excerpt(lines[j])}"
            )
    raise SubtitleRejected(
        "format", f"第 {number} 条字幕（第 {i + 1} 行）缺少时间轴，无法识别：{_excerpt(lines[i])}"
    )


def _timing(line: str, number: int, line_number: int) -> tuple[int, int]:
    where = f"第 {number} 条字幕（第 {line_number} 行）"
    match = _TIMING.match(line)
    if not match:
        raise SubtitleRejected("timing", f"{where}的时间格式不正确：{_excerpt(line)}")
    start, end = _milliseconds(match.groups()[:4]), _milliseconds(match.groups()[4:])
    if start is None or end is None:
        raise SubtitleRejected("timing", f"{where}的时间格式不正确（分或秒超过 59）：{_excerpt(line)}")
    if end < start:
        raise SubtitleRejected("timing", f"{where}的结束时间早于开始时间：{_excerpt(line)}")
    return start, end


def _milliseconds(parts: tuple) -> int | None:
    hours, minutes, seconds, millis = (int(part) if part else 0 for part in parts)
    if minutes > 59 or seconds > 59:
        return None
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis


def _clean_text(lines: list[str]) -> str:
    cleaned = (html.unescape(_TAGS.sub("", line)).strip() for line in lines)
    return "\n".join(line for line in cleaned if line)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _format(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _excerpt(line: str) -> str:
    line = line.strip()
    return line if len(line) <= 60 else line[:60] + "…"
