"""Indexing the learning library and searching it, permission-aware.

Only published lessons of published courses are indexed, and every hit is checked against the
database again before it is shown, so a lesson unpublished a moment ago never appears, not even
in counts. Users' text is never parsed as Whoosh query syntax: it is cut into words with the same
analyzer as the documents and the query is built from those terms.
"""

import html
import logging
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from whoosh import highlight
from whoosh.query import And, DateRange, Or, Prefix, Term

from school import access, db
from school.courses.markdown import plain_text
from school.courses.models import Course, Lesson
from school.formatting import clock
from school.media.models import Attachment, SubtitleTrack
from school.search import index, suggest
from school.search.analysis import HAN_RUN, fold_width, grams, known_word, normalize, title_pinyin, words

MAX_QUERY = 100
MAX_PAGE = 50  # a page costs every hit before it: nobody reads past the 1,000th
REBUILD_BACKOFF = timedelta(minutes=10)
log = logging.getLogger(__name__)
# video: what is said in or written about a lesson's video or audio (its text and subtitle cues)
KINDS = ("lesson", "video", "subtitle", "document")
# PDF text keeps the line breaks of the page layout; between Chinese characters they split words.
LAYOUT_BREAK = re.compile(r"(?<=[\u3400-\u9fff])\s*\n\s*(?=[\u3400-\u9fff])")


# --- indexing (worker only) --------------------------------------------------------------------


def course_documents(course: Course) -> list[dict]:
    """Everything of a course members may find: the course, its published lessons, their
    subtitle cues and document pages. Empty when the course is not published."""
    if course.state != "published":
        return []
    tags = " ".join(course.tags)
    description = plain_text(course.description)
    docs = [
        dict(
            key=f"course:{course.id}",
            kind="course",
            course=str(course.id),
            lesson="",
            title=course.title,
            text=f"{description} {course.title} {tags}",
            body=description,
            grams=f"{course.title} {tags} {description}",
            pinyin=title_pinyin(course.title),
            updated=course.updated_at,
        )
    ]
    for lesson in course.lessons:
        if lesson.state != "published":
            continue
        ids = dict(course=str(course.id), lesson=str(lesson.id), updated=lesson.updated_at)
        # a lesson with a video or audio to play: its text and subtitle cues are "video" hits
        played = {"played": "yes"} if lesson.media is not None else {}
        body = plain_text(lesson.body_md)
        docs.append(
            dict(
                key=f"lesson:{lesson.id}",
                kind="lesson",
                **played,
                title=lesson.title,
                text=f"{body} {lesson.title} {course.title} {tags}",
                body=body,
                grams=f"{lesson.title} {body}",
                pinyin=title_pinyin(lesson.title),
                **ids,
            )
        )
        for track in lesson.subtitles:
            for cue in track.cues:
                docs.append(
                    dict(
                        key=f"cue:{cue.id}",
                        kind="subtitle",
                        **played,
                        text=cue.text,
                        body=cue.text,
                        grams=cue.text,
                        start_ms=cue.start_ms,
                        **ids,
                    )
                )
        for attachment in lesson.attachments:
            for number, page in enumerate(attachment.pages or [], 1):
                page = LAYOUT_BREAK.sub("", page)
                if page.strip():
                    docs.append(
                        dict(
                            key=f"page:{attachment.id}:{number}",
                            kind="document",
                            text=page,
                            body=page,
                            grams=page,
                            page=number,
                            attachment=[attachment.id, attachment.filename],
                            **ids,
                        )
                    )
    return docs


def index_course(course_id: int) -> int:
    """Replace a course's documents in the live index; returns how many it now has."""
    if not index.exists():
        return rebuild()  # first run, or an index of an older schema: build it all
    course = db.session.get(Course, course_id)
    docs = course_documents(course) if course else []
    # End the read before the slow index write: a worker's transaction on SQLite holds the write
    # lock, and members signing in must not wait for Whoosh.
    db.session.commit()
    with index.write_lock():
        writer = index.writer(index.open_index())
        try:
            writer.delete_by_term("course", str(course_id))
            for doc in docs:
                writer.add_document(**doc)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
    return len(docs)


def rebuild(progress=lambda done, total: None) -> int:
    """Build a new index from the database and swap it in atomically; returns the document count."""
    course_ids = db.session.scalars(sa.select(Course.id).where(Course.state == "published")).all()
    # Never wait for the index lock while holding the database's (SQLite: a worker transaction
    # holds the write lock): the thread holding the index lock may need the database to finish.
    db.session.commit()
    with index.write_lock():
        path, ix = index.new_generation()
        writer = index.writer(ix)
        count = 0
        try:
            for done, course_id in enumerate(course_ids, 1):
                docs = course_documents(db.session.get(Course, course_id))
                db.session.commit()  # as in index_course: no database lock while Whoosh works
                for doc in docs:
                    writer.add_document(**doc)
                    count += 1
                progress(done, len(course_ids))
                db.session.expire_all()
        except BaseException:
            writer.cancel()
            shutil.rmtree(path, ignore_errors=True)  # no half generation left behind
            raise
        writer.commit()
        index.publish(path)
    return count


# Changes to what members can find queue a re-index of the course (after the commit), from one
# place, so no service can forget it.
@event.listens_for(db.session, "after_flush")
def _collect_changes(session, _context) -> None:
    touched = session.info.setdefault("reindex_courses", set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Course):
            touched.add(obj.id)
        elif isinstance(obj, Lesson):
            touched.add(obj.course_id)
        elif isinstance(obj, (Attachment, SubtitleTrack)) and obj.lesson_id:
            touched.add(("lesson", obj.lesson_id))


@event.listens_for(db.session, "before_commit")
def _queue_reindex(session) -> None:
    from school.jobs import service as jobs

    session.flush()
    touched = session.info.pop("reindex_courses", set())
    lesson_ids = [t[1] for t in touched if isinstance(t, tuple)]
    course_ids = {t for t in touched if isinstance(t, int)}
    if lesson_ids:
        course_ids |= set(session.scalars(sa.select(Lesson.course_id).where(Lesson.id.in_(lesson_ids))))
    for course_id in sorted(c for c in course_ids if c):
        jobs.enqueue("search.index_course", {"course_id": course_id})
    session.info.pop("reindex_courses", None)


# --- searching -----------------------------------------------------------------------------


@dataclass
class Hit:
    kind: str
    course_id: int
    course_title: str
    lesson_id: int | None
    lesson_title: str | None
    snippet: Markup
    start_ms: int | None = None
    page: int | None = None
    attachment_id: int | None = None
    attachment_name: str | None = None
    score: float = 0.0

    @property
    def seconds(self) -> int | None:
        return None if self.start_ms is None else self.start_ms // 1000


@dataclass
class Results:
    query: str
    hits: list[Hit] = field(default_factory=list)
    total: int = 0
    page: int = 1
    per_page: int = 20
    partial: bool = False  # no result held every word: these hold some of them
    truncated: bool = False  # the query was cut to MAX_QUERY characters
    unavailable: bool = False  # the index is missing or broken (a rebuild is queued)
    more: bool = False  # there is a next page
    exact: bool = True  # total counts every hit (else the hits up to the end of the next page)
    suggestion: str | None = None  # “您是不是要找”: the query with a mistyped term corrected
    words: tuple[str, ...] = ()  # the words the hits were found by, to mark in titles

    @property
    def pages(self) -> int:
        """Pages known so far: all of them when the total is exact, else up to the next one."""
        return max(1, -(-self.total // self.per_page))


# Question words and particles people type around the word they mean (怎么交党费).
STOP_WORDS = frozenset(
    {
        "怎么",
        "怎样",
        "如何",
        "什么",
        "为什么",
        "哪些",
        "哪里",
        "哪个",
        "是否",
        "可以",
        "的",
        "了",
        "吗",
        "呢",
        "吧",
        "啊",
        "是",
        "在",
        "和",
        "与",
        "及",
        "或",
        "要",
        "有",
        "请问",
    }
)


def _passes(text: str) -> list[tuple[object, bool, tuple[str, ...]]]:
    """Queries to try in turn, each with whether its hits hold only some of the words and the
    words to mark in titles: every word (jieba tokens); else, for Latin letters only, a title in
    pinyin (full or initials, as a prefix); else every 1–2 char gram (single characters, words
    jieba splits differently); else any of the longer words."""

    def anywhere(word: str):
        # A Chinese character alone (课, 党) is found inside words too (党课, 课件): jieba keeps it
        # as a token only where it stands alone. Its gram has a lower boost, so those rank first.
        if len(word) == 1 and HAN_RUN.match(word):
            return Or([Term("title", word), Term("text", word), Term("grams", word)])
        return Or([Term("title", word), Term("text", word)])

    kept = [w for w in words(text) if w not in STOP_WORDS]
    passes: list[tuple[object, bool, tuple[str, ...]]] = []
    if kept:
        passes.append((And([anywhere(w) for w in kept]), False, tuple(kept)))
    typed = fold_width(text).replace(" ", "").lower()
    if len(typed) >= 2 and typed.isascii() and typed.isalpha():  # sanhui, shyk: a title in pinyin
        passes.append((Prefix("pinyin", typed) if len(typed) >= 3 else Term("pinyin", typed), False, ()))
    gram_list = grams(" ".join(kept) if kept else text)
    # Grams rescue a short term jieba cut differently (誊, 组织生活会); for a longer query
    # they only repeat the loose pass at a higher cost.
    if gram_list and len(gram_list) <= 6 and not all(known_word(w) for w in kept):
        passes.append((And([Term("grams", g) for g in gram_list]), False, tuple(gram_list)))
    loose = [w for w in kept if len(w) > 1] or kept  # in the loose pass a lone 交 or 的 is noise
    if len(loose) > 1 or loose != kept:
        passes.append((Or([anywhere(w) for w in loose]), True, tuple(loose)))
    return passes


def _visible(lesson_ids: set[int], course_ids: set[int]) -> tuple[dict, dict]:
    """Titles of the hits' courses and lessons that are published now (one query)."""
    rows = db.session.execute(
        sa.select(Course.id, Course.title, Lesson.id, Lesson.title)
        .outerjoin(
            Lesson,
            sa.and_(
                Lesson.course_id == Course.id, Lesson.id.in_(lesson_ids or {-1}), Lesson.state == "published"
            ),
        )
        .where(Course.id.in_(course_ids or {-1}), Course.state == "published")
    ).all()
    courses = {row[0]: row[1] for row in rows}
    lessons = {row[2]: row[3] for row in rows if row[2] is not None}
    return courses, lessons


def search(
    text: str,
    page: int = 1,
    per_page: int = 20,
    kind: str | None = None,
    course_id: int | None = None,
    days: int | None = None,
    now: datetime | None = None,
    viewer=None,
    correct: bool = True,
) -> Results:
    """Search the library as `viewer` sees it (None: only what is open to every member). When no
    hit holds every word, a corrected query that finds some (`correct`) is offered as well."""
    text = " ".join((text or "").split())
    results = Results(
        query=text[:MAX_QUERY],
        page=min(max(1, page), MAX_PAGE),
        per_page=per_page,
        truncated=len(text) > MAX_QUERY,
    )
    passes = _passes(results.query) if results.query else []
    if not passes:
        return results
    filters = []
    if kind == "video":
        filters.append(Term("played", "yes"))
    elif kind in KINDS:
        filters.append(Term("kind", kind))
    if course_id:
        filters.append(Term("course", str(course_id)))
    if days:
        filters.append(DateRange("updated", (now or db.utcnow()) - timedelta(days=days), None))
    # Plan-only courses the viewer is not assigned are masked in the search itself, so they
    # take no place in the pages or the counts (read from the database now, not from the index).
    hidden = access.hidden_course_ids(viewer)
    mask = Or([Term("course", str(course_id)) for course_id in sorted(hidden)]) if hidden else None
    try:
        searcher = index.searcher()  # raises when the index is missing or of another version
        _fill(results, searcher, passes, filters, mask)
        if correct and (results.partial or not results.total) and results.page == 1:
            same = dict(kind=kind, course_id=course_id, days=days, now=now, viewer=viewer)
            seen = lambda pair: searcher.doc_frequency("grams", pair) > 0  # noqa: E731
            for candidate in suggest.corrections(
                normalize(results.query), suggest.known_variants(searcher), seen_pair=seen
            ):
                tried = search(candidate, per_page=1, correct=False, **same)
                if tried.total and not tried.partial:
                    results.suggestion = candidate
                    break
    except SQLAlchemyError:
        raise  # the database's trouble, not the index's
    except Exception:
        # Missing, of another version, or damaged inside (a segment that no longer decompresses):
        # the site stays up, says search is being rebuilt, and the worker rebuilds it.
        log.exception("search index unreadable; queueing a rebuild")
        results.hits, results.total, results.unavailable = [], 0, True
        _queue_rebuild()
    return results


def _fill(results: Results, searcher, passes, filters: list, mask) -> None:
    """Run the passes in turn until one finds something the member may see; put its page of hits
    (highlighted) into results."""
    per_page = results.per_page
    for query, partial, marked in passes:
        if filters:
            query = And([query, *filters])
        # Up to the end of the next page only: counting every match re-runs the query
        # (FIELD-NOTES), so the total is exact when fewer came back, and a lower bound otherwise.
        limit = (results.page + 1) * per_page
        found = searcher.search(query, limit=limit, terms=True, mask=mask)
        stored = [(hit, hit.fields()) for hit in found]
        courses, lessons = _visible(
            {int(f["lesson"]) for _h, f in stored if f.get("lesson")},
            {int(f["course"]) for _h, f in stored},
        )
        # unpublished since it was indexed: never shown, never counted, never decides the pass
        hits = [
            (hit, f, int(f["course"]), int(f["lesson"]) if f.get("lesson") else None)
            for hit, f in stored
            if int(f["course"]) in courses and (not f.get("lesson") or int(f["lesson"]) in lessons)
        ]
        if hits:
            results.partial, results.words = partial, marked
            break
    else:
        return
    # A page past the end shows the last one.
    results.page = min(results.page, -(-len(hits) // per_page))
    results.more = len(hits) > results.page * per_page
    results.total, results.exact = len(hits), len(found.top_n) < limit
    found.fragmenter = highlight.PinpointFragmenter(maxchars=120, surround=30)
    found.formatter = Passages(tagname="mark", between=" ")
    start = (results.page - 1) * per_page
    for hit, f, cid, lid in hits[start : start + per_page]:
        attachment = f.get("attachment") or [None, None]
        snippet = Markup(_snippet(hit, f, found.fragmenter))  # noqa: S704 # nosec B704 # Whoosh escapes; only <mark> is ours
        results.hits.append(
            Hit(
                kind=f["kind"],
                course_id=cid,
                course_title=courses[cid],
                lesson_id=lid,
                lesson_title=lessons[lid] if lid else None,
                snippet=snippet,
                start_ms=f.get("start_ms"),
                page=f.get("page"),
                attachment_id=attachment[0],
                attachment_name=attachment[1],
                score=hit.score,
            )
        )


class Passages(highlight.HtmlFormatter):
    """Whoosh's <mark> formatter, with … where a passage is cut out of a longer text, so a
    snippet that starts mid-sentence (职评议的材料…) shows that it does."""

    def format_fragment(self, fragment, replace=False):
        passage = super().format_fragment(fragment, replace)
        before = "…" if fragment.startchar > 0 else ""
        after = "…" if fragment.endchar < len(fragment.text) else ""
        return f"{before}{passage}{after}"


def _snippet(hit, stored: dict, fragmenter) -> str:
    """The hit's best passages with the words marked: from the body (offsets read from the
    index, no re-analysis), else the body's matching grams, else the title, else the body's start."""
    body = stored.get("body") or ""
    if body:
        fragmenter.charlimit = len(body)  # `text` goes on with titles and tags after the body
        marked = hit.highlights("text", text=body, top=2)
        if marked:
            return marked
    fragmenter.charlimit = highlight.DEFAULT_CHARLIMIT
    if body and any(name == "grams" for name, _term in hit.matched_terms()):
        marked = hit.highlights("grams", text=body, top=2)  # 誊: found by its single character
        if marked:
            return marked
    title = stored.get("title")
    return (title and hit.highlights("title")) or escape((body or title or "")[:80])


def mark(text: str, marked: tuple[str, ...]) -> Markup:
    """A title with the words searched in <mark> and the rest escaped. Words are matched on the
    title's normalised form (full-width folded, traditional read as simplified, one character for
    one), so 三會一課 is marked for 三会一课 where it stands."""
    folded = normalize(text)
    if len(folded.lower()) == len(text):  # lower() may lengthen a few letters (İ)
        folded = folded.lower()
    inside = [False] * len(text)
    for word in marked:
        start = folded.find(word) if word else -1
        while start != -1:
            inside[start : start + len(word)] = [True] * len(word)
            start = folded.find(word, start + 1)
    runs, start = [], 0
    for end in range(1, len(text) + 1):
        if end == len(text) or inside[end] != inside[start]:
            run = escape(text[start:end])
            runs.append(Markup("<mark>%s</mark>") % run if inside[start] else run)
            start = end
    return Markup("").join(runs)


def course_choices(viewer) -> list[tuple[int, str]]:
    """Published courses the viewer may see (id, title), for the search page's course filter."""
    hidden = access.hidden_course_ids(viewer)
    stmt = sa.select(Course.id, Course.title).where(Course.state == "published").order_by(Course.title)
    return [(cid, title) for cid, title in db.session.execute(stmt) if cid not in hidden]


def _queue_rebuild() -> None:
    from school.jobs import service as jobs
    from school.jobs.models import Job

    with db.writing():
        # One at a time, and after a failed one not again for a while: each try writes a whole
        # index, and a search every second must not become a rebuild every second.
        pending = db.session.scalar(
            sa.select(Job.id).where(
                Job.kind == "search.rebuild",
                sa.or_(
                    Job.state.in_(("queued", "running")),
                    sa.and_(Job.state == "failed", Job.finished_at > db.utcnow() - REBUILD_BACKOFF),
                ),
            )
        )
        if pending is None:
            jobs.enqueue("search.rebuild")
        db.session.commit()


def hit_json(hit: Hit) -> dict:
    """A hit for the API and the CLI (snippet as plain text and as escaped HTML)."""
    return {
        "kind": hit.kind,
        "course_id": hit.course_id,
        "course_title": hit.course_title,
        "lesson_id": hit.lesson_id,
        "lesson_title": hit.lesson_title,
        "html": str(hit.snippet),
        "text": html.unescape(re.sub(r"<[^>]+>", "", str(hit.snippet))),
        "start_seconds": hit.seconds,
        "time": clock(hit.seconds),
        "page": hit.page,
        "attachment_id": hit.attachment_id,
        "attachment_name": hit.attachment_name,
    }


def group(hits: list[Hit]) -> list[tuple[tuple[int, str], list[tuple[tuple, list[Hit]]]]]:
    """Hits grouped by course, then lesson, in order of first appearance."""
    courses: dict = {}
    for hit in hits:
        lessons = courses.setdefault((hit.course_id, hit.course_title), {})
        lessons.setdefault((hit.lesson_id, hit.lesson_title), []).append(hit)
    return [(course, list(lessons.items())) for course, lessons in courses.items()]
