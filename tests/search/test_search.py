"""Search over a small library built in each test; the index is written by the real job."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from school import db
from school.courses import service as courses
from school.jobs import service as jobs
from school.jobs.models import Job
from school.media import service as media
from school.media.models import Attachment
from school.search import index
from school.search import service as search
from school.search.analysis import words
from tests.conftest import sign_in
from tests.factories import make_org, make_user

SRT = (
    "1\n00:00:01,000 --> 00:00:03,000\n会议记录要及时誊清\n\n"
    "2\n00:12:34,000 --> 00:12:38,000\n提醒按时交纳党费\n"
)


def run_jobs(app) -> None:
    with app.app_context():
        for job_id in db.session.scalars(sa.select(Job.id).where(Job.state == "queued")).all():
            jobs.run(job_id, app.config)


def library(app, published=True):
    """One course: a lesson with text and subtitles, a lesson with a document, a draft lesson."""
    owner = make_user(roles=[("lecturer", None)], phone="13800000001")
    with app.app_context():
        course = courses.create_course(owner, "「三会一课」怎么开好", "支部组织生活的基本制度", "组织生活")
        first = courses.create_lesson(course, "支部党员大会")
        courses.update_lesson(
            first,
            "支部党员大会",
            "## 要点\n\n**三会一课**是基本制度，PPT 课件 2025年 更新。<script>alert(1)</script>",
            "0.5",
            "read",
        )
        media.add_subtitles(first, SRT.encode("gbk"))
        second = courses.create_lesson(course, "防瘫预警看板")
        courses.update_lesson(second, "防瘫预警看板", "看板显示各支部的学习情况。", "0.25", "read")
        db.session.add(
            Attachment(
                lesson_id=second.id,
                filename="操作指引.pdf",
                kind="pdf",
                mime="application/pdf",
                path="attachments/x.pdf",
                state="ready",
                text="…",
                pages=["第一页：名单导入", "第二页：查核比评的做法"],
            )
        )
        draft = courses.create_lesson(course, "草稿课时")
        courses.update_lesson(draft, "草稿课时", "保密的草稿内容 量子纠缠", "0", "read")
        for lesson in (first, second):
            courses.set_lesson_state(lesson, "published")
        if published:
            courses.set_course_state(course, "published", db.utcnow())
        db.session.commit()
        ids = {"course": course.id, "first": first.id, "second": second.id, "draft": draft.id}
    run_jobs(app)  # the re-index jobs queued by those commits
    return ids


def find(app, text, **kw):
    with app.test_request_context():
        return search.search(text, **kw)


def test_chinese_words_titles_subtitles_and_documents_are_found(app):
    ids = library(app)
    assert [h.lesson_id for h in find(app, "三会一课").hits][:2].count(ids["first"]) >= 1
    cue = find(app, "党费").hits[0]
    assert (cue.kind, cue.lesson_id, cue.start_ms, cue.seconds) == ("subtitle", ids["first"], 754000, 754)
    page = find(app, "查核比评").hits[0]
    assert (page.kind, page.page, page.attachment_name) == ("document", 2, "操作指引.pdf")
    assert find(app, "防瘫预警").hits[0].lesson_id == ids["second"]


def test_single_characters_and_mixed_words_are_found(app):
    ids = library(app)
    assert find(app, "誊").hits[0].lesson_id == ids["first"]
    assert find(app, "ppt").hits[0].lesson_id == ids["first"]
    assert find(app, "2025年").hits[0].lesson_id == ids["first"]


def test_drafts_and_unpublished_lessons_never_appear(app):
    ids = library(app)
    assert find(app, "量子纠缠").total == 0 and find(app, "草稿").total == 0
    with app.app_context():
        lesson = courses.get_lesson(ids["second"])
        courses.set_lesson_state(lesson, "draft")
        db.session.commit()
    # before the re-index job runs, the database check already hides it, counts included
    results = find(app, "防瘫预警")
    assert all(h.lesson_id != ids["second"] for h in results.hits) and results.total == 0
    run_jobs(app)
    assert find(app, "查核比评").total == 0


def test_an_unpublished_course_is_not_indexed(app):
    library(app, published=False)
    assert find(app, "三会一课").total == 0


def test_snippets_highlight_and_stay_inert(app):
    library(app)
    html = str(find(app, "三会一课").hits[0].snippet)
    assert "<mark" in html
    hostile = str(find(app, "alert").hits[0].snippet)
    assert "<mark" in hostile and "<script" not in hostile and "&lt;script" in hostile


@pytest.mark.parametrize("query", ["PPT", "党费", "查核比评", "组织生活", "支部", "誊"])
def test_marks_cover_exactly_the_words_searched(app, query):
    """Snippets are cut at offsets read from the index (the body leads the indexed text, titles and
    tags follow it): a mark must wrap the word itself, never characters beside it."""
    library(app)
    hits = find(app, query).hits
    assert hits
    wanted = {word.lower() for word in words(query)}
    for hit in hits:
        for marked in re.findall(r"<mark[^>]*>(.*?)</mark>", str(hit.snippet)):
            assert marked.lower() in wanted, (hit.kind, str(hit.snippet))


def test_a_hit_found_by_its_grams_is_highlighted_too(app):
    library(app)
    assert '<mark class="match term0">誊</mark>清' in str(find(app, "誊").hits[0].snippet)


def test_markdown_marks_do_not_reach_snippets(app):
    library(app)
    snippet = next(str(h.snippet) for h in find(app, "基本制度").hits if h.kind == "lesson")
    assert "三会一课是" in snippet  # from **三会一课**是
    assert "*" not in snippet and "#" not in snippet


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        'AND OR NOT * ? ~ ( ) " title:x',
        "三会一课 AND",
        "*",
        '"',
        "x" * 2000,
        "\udcff",
        "title:三会一课",
        "body:(党费 OR 党)",
    ],
)
def test_hostile_queries_give_clear_results_never_errors(app, query):
    library(app)
    results = find(app, query)
    assert results.total >= 0
    assert results.truncated == (len(query.strip()) > search.MAX_QUERY)


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("防滩预警", "防瘫预警"),
        ("三会二课", "三会一课"),
        ("怎么开好三会二课", "怎么开好三会一课"),
        ("防瘫预警", None),
        ("党费", None),
    ],
)
def test_a_mistyped_term_is_corrected_only_when_the_correction_finds_it(app, typed, meant):
    library(app)
    assert find(app, typed).suggestion == meant


def test_the_correction_is_offered_on_the_page_the_api_and_the_cli(app, client):
    library(app)
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    html = client.get("/search?q=防滩预警&type=lesson").get_data(as_text=True)
    assert "您是不是要找：" in html and "q=%E9%98%B2%E7%98%AB%E9%A2%84%E8%AD%A6&amp;type=lesson" in html
    assert client.get("/api/v1/search?q=防滩预警").get_json()["suggestion"] == "防瘫预警"
    result = app.test_cli_runner().invoke(app.cli, ["search", "query", "防滩预警"])
    assert "did you mean: 防瘫预警" in result.output
    # a correction that finds nothing under the filters chosen is not offered
    assert client.get("/api/v1/search?q=防滩预警&type=subtitle").get_json()["suggestion"] is None


def test_search_page_groups_hits_and_links_to_the_second(app, client):
    ids = library(app)
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    html = client.get("/search?q=党费").get_data(as_text=True)
    assert f"/lessons/{ids['first']}?t=754" in html and "12:34" in html
    assert ">党费</mark>" in html
    empty = client.get("/search?q=量子计算机器").get_data(as_text=True)
    assert "没有找到" in empty or "部分" in empty
    assert client.get("/search?q=%ff%fe&type=bogus&course=abc&page=-1").status_code == 200


def test_the_course_filter_lists_published_courses_and_narrows_hits(app, client):
    ids = library(app)
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    html = client.get("/search?q=党费").get_data(as_text=True)
    assert f'<option value="{ids["course"]}">「三会一课」怎么开好</option>' in html
    assert client.get(f"/api/v1/search?q=党费&course={ids['course']}").get_json()["total"] == 1
    assert client.get(f"/api/v1/search?q=党费&course={ids['course'] + 1}").get_json()["total"] == 0


def test_api_and_cli_give_the_same_hits(app, client):
    ids = library(app)
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    data = client.get("/api/v1/search?q=党费").get_json()
    assert data["hits"][0]["start_seconds"] == 754 and data["hits"][0]["lesson_id"] == ids["first"]
    result = app.test_cli_runner().invoke(app.cli, ["search", "query", "党费", "--json"])
    assert result.exit_code == 0, result.output
    assert '"start_seconds": 754' in result.output
    assert client.get("/api/v1/search?q=党费&type=document").get_json()["total"] == 0


def test_a_missing_index_keeps_the_site_up_and_queues_a_rebuild(app, client):
    library(app)
    with app.app_context():
        os.unlink(index.current_path())
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    page = client.get("/search?q=党费")
    assert page.status_code == 200 and "正在重建" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(Job.kind).where(Job.state == "queued")) == "search.rebuild"
    run_jobs(app)
    assert find(app, "党费").total == 1


def test_an_index_of_an_older_schema_is_rebuilt_not_half_used(app, client):
    library(app)
    with app.app_context():
        (index.current_path() / index.VERSION_FILE).write_text("1")
    assert find(app, "党费").unavailable
    run_jobs(app)  # the rebuild it queued
    assert find(app, "党费").total == 1


def test_rebuild_swaps_a_new_index_in(app):
    library(app)
    with app.app_context():
        before = os.readlink(index.current_path())
    result = app.test_cli_runner().invoke(app.cli, ["search", "rebuild"])
    assert result.exit_code == 0 and "documents" in result.output
    with app.app_context():
        after = os.readlink(index.current_path())
        assert after != before and not (Path(app.config["INDEX_DIR"]) / before).exists()
    assert find(app, "党费").total == 1


def test_a_writer_killed_mid_write_leaves_a_readable_index_and_no_stale_lock(app):
    library(app)
    with app.app_context():
        path = str(index.current_path())
    script = (
        "import sys, time\nfrom whoosh import index\n"
        f"ix = index.open_dir({path!r})\nw = ix.writer()\n"
        "w.add_document(key='x', body='half written')\nprint('locked', flush=True)\ntime.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert find(app, "党费").total == 1  # readable
    with app.app_context():
        assert search.index_course(1) >= 1  # the lock died with the process
