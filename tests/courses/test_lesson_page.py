"""The lesson page as the server renders it: the player's markup, the data its script needs, and weight."""

import json
import re
from html import unescape

from school import db
from school.courses import service as courses
from school.media import service as media
from school.media.models import MediaAsset, Rendition
from tests.conftest import api_token, sign_in
from tests.factories import make_org, make_user

SRT = (
    "1\n00:00:00,000 --> 00:00:02,000\n同志们好\n\n2\n00:00:02,000 --> 00:00:04,000\n今天学习三会一课\n"
).encode()
MIME = {"360p": "video/mp4", "high": "video/mp4", "audio": "audio/mp4", "poster": "image/jpeg"}


def make_lesson(
    app,
    renditions=("360p", "high", "audio", "poster"),
    completion="watch",
    subtitles=True,
    kind="video",
    duration=8.0,
):
    """A published lesson whose media is ready with the given renditions (rows only, no files)."""
    owner = make_user(roles=[("lecturer", None)])
    with app.app_context():  # MEDIA_DIR (for the subtitles) comes from the app's settings
        course = courses.create_course(owner, "三会一课")
        lesson = courses.create_lesson(course, "支部党员大会")
        courses.update_lesson(lesson, "支部党员大会", "正文", "0.5", completion)
        if renditions:
            asset = MediaAsset(lesson_id=lesson.id, state="ready", kind=kind, duration=duration)
            asset.renditions = [
                Rendition(name=name, path=f"renditions/x/{name}", mime=MIME[name]) for name in renditions
            ]
            db.session.add(asset)
            db.session.flush()
            lesson.media_id = asset.id
        if subtitles:
            media.add_subtitles(lesson, SRT)
        courses.set_lesson_state(lesson, "published")
        courses.set_course_state(course, "published", db.utcnow())
        db.session.commit()
        return lesson.id


def member_client(client):
    make_user(make_org(), phone="13900000099")
    sign_in(client, "13900000099")
    return client


def page_of(client, lesson_id: int) -> str:
    response = client.get(f"/lessons/{lesson_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def player_data(html: str) -> dict:
    """The data-* attributes of the player's root element."""
    tag = re.search(r'<div id="lesson-player"[^>]*>', html, re.S).group(0)
    found = re.findall(r"""data-([\w-]+)=(?:"([^"]*)"|'([^']*)')""", tag)
    return {name: unescape(double or single) for name, double, single in found}


def test_video_plays_inline_in_phone_and_wechat_browsers(app, client):
    lesson_id = make_lesson(app)
    html = page_of(member_client(client), lesson_id)
    video = re.search(r"<video[^>]*>", html, re.S).group(0)
    for attribute in (
        "playsinline",
        'webkit-playsinline="true"',
        'x5-playsinline="true"',
        'x5-video-player-type="h5-page"',
        "controls",
        'preload="metadata"',
    ):
        assert attribute in video
    assert re.search(r'poster="/media/r/\d+/poster\.jpg"', video)
    assert re.search(r'src="/media/r/\d+/360p\.mp4"', video)


def test_quality_choice_is_offered_only_when_an_hd_rendition_exists(app, client):
    member_client(client)
    with_hd = page_of(client, make_lesson(app))
    assert 'data-quality="high"' in with_hd and 'data-quality="low"' in with_hd
    assert re.search(r'data-src-high="/media/r/\d+/high\.mp4"', with_hd)

    without_hd = page_of(client, make_lesson(app, renditions=("360p", "audio", "poster")))
    assert "data-quality" not in without_hd and 'id="lp-quality"' not in without_hd
    assert 'data-src-high=""' in without_hd


def test_listening_mode_is_offered_when_there_is_an_audio_rendition(app, client):
    member_client(client)
    html = page_of(client, make_lesson(app))
    assert 'id="lp-listen-btn" aria-pressed="false"' in html
    assert re.search(r'<audio id="lp-audio"[^>]*preload="none"', html)  # fetched only when chosen
    assert re.search(r'data-src-audio="/media/r/\d+/audio\.m4a"', html)

    silent = page_of(client, make_lesson(app, renditions=("360p", "poster")))
    assert "lp-listen-btn" not in silent


def test_audio_lesson_plays_in_an_audio_element_without_video_controls(app, client):
    member_client(client)
    html = page_of(client, make_lesson(app, renditions=("audio", "poster"), kind="audio", subtitles=False))
    assert "<video" not in html
    assert re.search(r'<audio id="lp-audio"[^>]*src="/media/r/\d+/audio\.m4a"', html)
    assert "lp-listen-btn" not in html and "lp-quality" not in html and 'id="lp-speed"' in html


def test_subtitles_are_a_track_with_an_on_off_button(app, client):
    member_client(client)
    html = page_of(client, make_lesson(app))
    track = re.search(r'<track kind="subtitles"[^>]*src="([^"]+)"[^>]*>', html)
    assert track and " default" in track.group(0)
    assert 'id="lp-subs" aria-pressed="true"' in html
    vtt = client.get(track.group(1))
    assert vtt.status_code == 200 and vtt.get_data(as_text=True).startswith("WEBVTT")

    assert "lp-subs" not in page_of(client, make_lesson(app, subtitles=False))


def test_page_gives_the_player_its_urls_progress_and_settings(app, client):
    lesson_id = make_lesson(app)
    data = player_data(page_of(member_client(client), lesson_id))

    assert data["lesson-id"] == str(lesson_id)
    assert data["kind"] == "watch" and data["completion"] == "watch"
    assert data["start-url"] == f"/api/v1/lessons/{lesson_id}/viewings"
    assert data["beat-url"] == "/api/v1/viewings/SESSION/beats"
    assert data["finished-url"] == f"/api/v1/lessons/{lesson_id}/finished"
    assert data["read-minimum"] == str(app.config["READ_MINIMUM_SECONDS"])
    assert data["credit-hours"] == "0.5" and float(data["duration"]) == 8.0
    progress = json.loads(data["progress"])
    assert progress["coverage"] == 0 and progress["position"] == 0 and progress["completed"] is False


def test_page_shows_what_the_server_recorded_and_resumes_there(app, client):
    lesson_id = make_lesson(app)
    member_client(client)
    token = api_token(client)
    started = client.post(f"/api/v1/lessons/{lesson_id}/viewings", headers={"X-CSRFToken": token})
    assert started.status_code == 201
    beat = client.post(
        f"/api/v1/viewings/{started.get_json()['session_id']}/beats",
        json={"seq": 1, "from": 0, "to": 2, "rate": 1},
    )
    assert beat.status_code == 200

    html = page_of(client, lesson_id)
    progress = json.loads(player_data(html)["progress"])
    assert progress["position"] == 2.0 and progress["watched"] == [[0.0, 2.0]]
    assert "已观看 25%" in html and 'value="25"' in html
    assert re.search(r'id="lp-done" hidden', html)


def test_confirm_button_only_on_lessons_completed_by_confirming(app, client):
    member_client(client)
    assert 'id="lp-confirm"' not in page_of(client, make_lesson(app))
    confirm_id = make_lesson(app, completion="confirm")
    html = page_of(client, confirm_id)
    assert 'id="lp-confirm"' in html and "我已学完" in html

    done = client.post(f"/api/v1/lessons/{confirm_id}/finished", headers={"X-CSRFToken": api_token(client)})
    assert done.status_code == 200 and done.get_json()["completed"] is True
    html = page_of(client, confirm_id)
    assert re.search(r'id="lp-confirm" hidden', html) and 'id="lp-done">' in html


def test_reading_lesson_shows_the_reading_time_needed(app, client):
    member_client(client)
    html = page_of(client, make_lesson(app, renditions=(), completion="read", subtitles=False))
    assert player_data(html)["kind"] == "read"
    assert "<video" not in html and "<audio" not in html and "lp-controls" not in html
    minutes = app.config["READ_MINIMUM_SECONDS"] / 60
    assert f"阅读计时 0:00 / 需要 {minutes:g} 分钟" in html


def test_page_shows_study_hours_and_includes_the_quiz_block(app, client):
    html = page_of(member_client(client), make_lesson(app))
    assert "0.5 学时" in html
    template = app.jinja_env.loader.get_source(app.jinja_env, "courses/lesson.html")[0]
    assert '{% include "quizzes/_lesson_quiz.html" ignore missing %}' in template


def test_page_has_no_inline_script_the_csp_would_block(app, client):
    html = page_of(member_client(client), make_lesson(app))
    for script in re.findall(r"<script([^>]*)>", html):
        assert "src=" in script or 'type="application/json"' in script
    assert " style=" not in html and "onclick" not in html


def test_lesson_page_weighs_at_most_150_kb_before_media(app, client):
    """HTML plus every stylesheet, script, icon and manifest it references (fonts: none)."""
    html = page_of(member_client(client), make_lesson(app))
    urls = re.findall(r'<(?:link|script)[^>]+(?:href|src)="(/[^"]+)"', html)
    assert any("player.js" in u for u in urls) and any("site.css" in u for u in urls)
    sizes = {"page": len(html.encode())}
    for url in urls:
        response = client.get(unescape(url))
        assert response.status_code == 200, url
        sizes[url] = len(response.data)
    total = sum(sizes.values())
    print(f"lesson page weight: {total} bytes {sizes}")
    assert total <= 150 * 1024
