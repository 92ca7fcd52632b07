"""Probe and transcode on tiny media made by ffmpeg's own test sources (no media files in git)."""

import subprocess
from pathlib import Path

import pytest

from school.media.binaries import paths
from school.media.probe import MediaInfo, MediaRejected, probe
from school.media.transcode import plan, transcode

FFMPEG = paths()[0]
HLS = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n/etc/passwd\n#EXT-X-ENDLIST\n"


@pytest.fixture(scope="module")
def make(tmp_path_factory):
    """make(name, *ffmpeg_args) -> path of a source generated once per module."""
    folder = tmp_path_factory.mktemp("sources")
    made = {}

    def _make(name: str, *args: str) -> Path:
        if name not in made:
            path = folder / name
            subprocess.run([FFMPEG, "-hide_banner", "-v", "error", "-y", *args, str(path)], check=True)
            made[name] = path
        return made[name]

    return _make


def clip(make, name: str, size: str = "320x180", seconds: int = 2, audio: bool = True, fast=False):
    """A test-pattern video (with a 440 Hz tone unless audio=False)."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    extra = ["-movflags", "+faststart"] if fast else []
    return make(name, *args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra)


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def video_info(**fields) -> MediaInfo:
    """A MediaInfo as probe() would give for a video (stream 0) without sound, with `fields` changed."""
    base = dict(rotation=0, has_video=True, has_audio=False, video_codec="h264", audio_codec=None)
    base.update(format_name="mov,mp4,m4a,3gp,3g2,mj2", bit_rate=None, fps=25.0, video_stream=0)
    return MediaInfo(**{**base, **fields})


def rejected(path, **kw) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        probe(path, **kw)
    return caught.value


def test_video_gives_360p_audio_and_poster_at_its_own_size(make, tmp_path):
    src = clip(make, "small.mp4")
    info = probe(src)
    assert (info.width, info.height, info.has_video, info.has_audio) == (320, 180, True, True)
    assert info.duration == pytest.approx(2, abs=0.1)

    out = transcode(src, tmp_path, info)

    assert set(out) == {"360p", "audio", "poster"}  # 180 high: never upscaled, no "high"
    assert (out["360p"].width, out["360p"].height) == (320, 180)
    assert (out["poster"].width, out["poster"].height) == (320, 180)
    assert out["360p"].duration == pytest.approx(2, abs=0.2)
    assert out["audio"].width is None and out["audio"].mime == "audio/mp4"
    assert all(o.size == o.path.stat().st_size > 0 for o in out.values())


def test_640x480_source_gives_360p_and_high_at_480(make, tmp_path):
    src = clip(make, "vga.mp4", size="640x480")

    out = transcode(src, tmp_path, probe(src))

    assert set(out) == {"360p", "high", "audio", "poster"}
    assert (out["360p"].width, out["360p"].height) == (480, 360)
    assert (out["high"].width, out["high"].height) == (640, 480)
    assert (out["poster"].width, out["poster"].height) == (640, 480)


def test_1080p_plan_is_360p_and_720p_high():
    info = video_info(width=1920, height=1080, duration=60, has_audio=True, audio_stream=1)

    sizes = {r.name: (r.width, r.height) for r in plan(info)}

    assert sizes == {"360p": (640, 360), "high": (1280, 720), "audio": (None, None), "poster": (1280, 720)}


def test_portrait_video_stays_portrait(make, tmp_path):
    src = clip(make, "portrait.mp4", size="180x320")

    out = transcode(src, tmp_path, probe(src))

    assert (out["360p"].width, out["360p"].height) == (180, 320)


def test_rotated_phone_video_comes_out_upright(make, tmp_path):
    src = make(
        "rotated.mp4",
        *("-display_rotation", "90", "-autorotate", "0"),  # stored 320x180, shown turned a quarter
        *("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2"),
        *("-c:v", "libx264", "-preset", "ultrafast"),
    )
    info = probe(src)
    assert info.rotation in (90, 270) and (info.width, info.height) == (180, 320)

    out = transcode(src, tmp_path, info)

    assert (out["360p"].width, out["360p"].height) == (180, 320)
    assert (out["poster"].width, out["poster"].height) == (180, 320)


def test_video_without_audio_has_no_audio_rendition(make, tmp_path):
    src = clip(make, "silent.mp4", audio=False)
    info = probe(src)
    assert not info.has_audio

    out = transcode(src, tmp_path, info)

    assert set(out) == {"360p", "poster"}


def test_mp3_with_cover_art_gives_audio_and_generated_poster(make, tmp_path):
    cover = make("cover.jpg", "-f", "lavfi", "-i", "color=c=blue:s=64x64", "-frames:v", "1")
    src = make(
        "talk.mp3",
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-i", str(cover)),
        *("-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "copy", "-disposition:v", "attached_pic"),
    )
    info = probe(src)
    assert (info.has_video, info.has_audio, info.kind) == (False, True, "audio")

    out = transcode(src, tmp_path, info)

    assert set(out) == {"audio", "poster"}
    assert (out["poster"].width, out["poster"].height) == (640, 360)
    assert out["audio"].duration == pytest.approx(2, abs=0.2)


def test_text_file_named_mp4_is_not_media(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("三会一课学习笔记\n" * 20)

    error = rejected(path)

    assert error.code == "not_media" and "MP4" in error.message


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()

    assert rejected(path).code == "empty"


def test_mp4_cut_in_half_is_truncated(make, tmp_path):
    whole = clip(make, "small.mp4").read_bytes()  # index (moov) at the end, as cameras write it
    path = tmp_path / "half.mp4"
    path.write_bytes(whole[: len(whole) // 2])

    assert rejected(path).code == "truncated"


def test_faststart_mp4_cut_in_half_fails_at_transcode(make, tmp_path):
    whole = clip(make, "faststart.mp4", seconds=3, fast=True).read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(whole[: len(whole) // 2])
    info = probe(path)  # the index at the front still claims 3 s
    out = tmp_path / "out"

    with pytest.raises(MediaRejected) as caught:
        transcode(path, out, info)

    assert caught.value.code == "truncated"
    assert files(out) == set()


@pytest.mark.parametrize("name", ["lesson.avi", "lesson.mp4"])
def test_hls_playlist_is_refused_without_reading_what_it_points_at(tmp_path, name):
    path = tmp_path / name
    path.write_text(HLS)
    error = rejected(path)
    assert error.code == "not_media"
    # ffmpeg refuses it too, even when asked directly without a probe.
    fake = video_info(width=320, height=180, duration=10)
    out = tmp_path / "out"

    with pytest.raises(MediaRejected) as caught:
        transcode(path, out, fake)

    for text in (str(error), error.detail, str(caught.value), caught.value.detail):
        assert "root:" not in text
    assert files(out) == set()


def test_ffconcat_list_is_refused(make, tmp_path):
    (tmp_path / "a.mp4").write_bytes(clip(make, "small.mp4").read_bytes())
    path = tmp_path / "list.mp4"
    path.write_text("ffconcat version 1.0\nfile 'a.mp4'\n")

    assert rejected(path).code == "not_media"


def test_huge_single_picture_is_not_a_video(make):
    src = make(
        "poster8000.mkv",
        *("-f", "lavfi", "-i", "color=c=red:s=8000x8000:d=0.04", "-frames:v", "1", "-c:v", "png"),
    )

    assert rejected(src).code == "no_streams"  # a still picture is no video, and there is no sound


def test_resolution_above_the_limit_is_refused(make):
    src = clip(make, "small.mp4")

    error = rejected(src, max_pixels=320 * 180 - 1)

    assert error.code == "too_large_resolution" and "320×180" in error.message


def test_longer_than_the_limit_is_refused(make):
    assert rejected(clip(make, "small.mp4"), max_duration=1).code == "too_long"


def test_progress_rises_to_100(make, tmp_path):
    src = clip(make, "small.mp4")
    seen = []

    transcode(src, tmp_path, probe(src), on_progress=seen.append)

    assert seen == sorted(seen) and len(seen) >= 2
    assert seen[-1] == 100 and all(0 <= p < 100 for p in seen[:-1])


def test_outputs_appear_only_under_final_names(make, tmp_path):
    src = clip(make, "vga.mp4", size="640x480")

    transcode(src, tmp_path, probe(src))

    assert files(tmp_path) == {"360p.mp4", "high.mp4", "audio.m4a", "poster.jpg"}


def test_timeout_kills_ffmpeg_and_leaves_no_outputs(make, tmp_path):
    src = clip(make, "long.mp4", seconds=30)
    seen = []

    with pytest.raises(MediaRejected) as caught:
        transcode(src, tmp_path, probe(src), on_progress=seen.append, timeout=0.3)

    assert caught.value.code == "timeout"
    assert files(tmp_path) == set()
    assert 100 not in seen
