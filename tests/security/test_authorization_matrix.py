"""Who may do what, route by route: the authorization matrix.

`MATRIX` lists a request for every route of `app.url_map` (every method) with the path filled with
ids of one small world, and says which actors may make it; everybody else must be refused (401,
403, 404 or, for pages, a redirect to the sign-in page), and a refused state-changing request must
leave the database as it was (audit tables aside: a refusal may be logged). The walk fails on a
route the table does not classify, and on any answer that differs from the table — an unexpected
200 above all.

The targets belong to branch A (district A) and to the course of lecturer L1, so the walk tests
object-level access, not just roles. The world:

    city ─ district A ─ street A ─ branch A1 (member_a, spare member) · branch A2
         └ district B ─ street B ─ branch B1 (member_b) · branch B2

    owner (L1) owns a published course (co-lecturer L3, spare co-lecturer L4) and a draft course;
    lecturer (L2) teaches nothing of it; org_a organizes district A, org_b district B; admin.

Holes these tests found, fixed: an upload could be continued and completed by a lecturer taken
off the course since starting it (school/api/uploads.py); an organizer whose grant moved to
another district could still fetch an export of the old one (school/reports/export_jobs.py);
heartbeats and quiz attempts begun on a lesson kept earning progress and showing its questions
after the lesson was taken back (school/learning/service.py, school/quizzes/).

Further tests: ids in query strings and JSON bodies and paging (IDOR), mass assignment, and
revocations taking effect on the next request. Covered elsewhere and not repeated here: every
route declares a rule and anonymous visitors reach only public ones (tests/test_access_rules.py);
a foreign `?org_id=` on every organizer page (tests/test_org_scope.py); organizer role revoked
(tests/orgs/test_members.py::test_organizer_role_revoked_takes_effect_on_next_request);
deactivated member signed out (tests/roster/test_members_admin.py and tests/accounts/
test_sessions.py); co-lecturer role revoked (tests/courses/test_authoring.py).
"""

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from school import db
from tests.conftest import api_token
from tests.factories import PASSWORD, make_admin, make_organizer, make_tree, make_user

ANON = "anon"
MEMBER_A, MEMBER_B = "member_a", "member_b"
OWNER, LECTURER, CO_LECTURER = "owner", "lecturer", "co_lecturer"
ORG_A, ORG_B, ADMIN = "org_a", "org_b", "admin"
ACTORS = (ANON, MEMBER_A, MEMBER_B, OWNER, LECTURER, CO_LECTURER, ORG_A, ORG_B, ADMIN)
PHONES = {
    MEMBER_A: "13900000001",
    MEMBER_B: "13900000002",
    OWNER: "13900000003",
    LECTURER: "13900000004",
    CO_LECTURER: "13900000005",
    ORG_A: "13900000006",
    ORG_B: "13900000007",
    ADMIN: "13900000008",
}

ALLOW, DENY = "allow", "deny"

# Who is allowed, by the kind of target (everybody not named is refused).
EVERYONE = frozenset(ACTORS)
SIGNED_IN = EVERYONE - {ANON}
LECTURERS = frozenset({OWNER, LECTURER, CO_LECTURER, ADMIN})
EDITORS = frozenset({OWNER, CO_LECTURER, ADMIN})  # of L1's course
OWNER_OR_ADMIN = frozenset({OWNER, ADMIN})
ORGANIZERS = frozenset({ORG_A, ORG_B, ADMIN})  # pages over "my subtree", no target
DISTRICT_A = frozenset({ORG_A, ADMIN})  # targets inside district A
ADMINS = frozenset({ADMIN})
ENROLLERS = ORGANIZERS  # two-factor sign-in is offered to organizers and admins


@dataclass(frozen=True)
class Case:
    """One request and who may make it; `codes` pins an exact status (or a tuple of them) for
    some actors."""

    method: str
    url: str  # with {name} placeholders filled from the world's ids
    allowed: frozenset
    codes: dict = field(default_factory=dict)
    form: dict | None = None
    json: dict | None = None
    fresh_session: bool = False  # ends the session: sign in again just for it
    only: tuple = ACTORS  # who is walked (all, unless it is slow and public)

    def expected(self, actor: str):
        if actor in self.codes:
            return self.codes[actor]
        return ALLOW if actor in self.allowed else DENY


def case(method, url, allowed, codes=None, **kw) -> Case:
    return Case(method, url, frozenset(allowed), dict(codes or {}), **kw)


G, P = "GET", "POST"

# The table. Targets: {branch} = branch A1, {street} = street A, {member} = member_a, {spare} =
# another member of branch A1, {course} = L1's published course, {lesson} its published lesson
# with media and quiz, {lesson2} a second published lesson, {draft_course} / {draft_lesson}
# unpublished, {plan} = a plan of branch A1, {meeting} / {warning} of branch A1, {export} = an
# export of org_a, {attempt} / {viewing} / {token} = member_a's. Some placeholders
# ({question_delete}, {attachment_delete}, {meeting_cancel}, {import_token}) give each allowed
# actor its own object, so that one's delete does not turn the next one's request into a 404.
# Refused actors go first, on the object the first allowed one then uses.
MATRIX: list[Case] = [
    # --- public -----------------------------------------------------------------------------------
    case(G, "/healthz", EVERYONE),
    case(G, "/manifest.webmanifest", EVERYONE),
    case(G, "/static/css/site.css", EVERYONE),
    case(G, "/sign-in", EVERYONE),  # signed in: redirected home
    case(P, "/sign-in", EVERYONE, {ANON: 400}),  # no password: 400; signed in: sent home
    case(G, "/readyz", EVERYONE, {a: (200, 503) for a in EVERYONE}),  # 503 names what is not ready
    case(G, "/sign-in/code", EVERYONE, {ANON: 302}),  # no password step pending: to /sign-in
    case(P, "/sign-in/code", EVERYONE, {ANON: 302}),
    case(G, "/api/v1/csrf-token", EVERYONE),
    case(G, "/api/v1/openapi.json", EVERYONE, only=(ANON, MEMBER_A)),  # built anew each time: slow
    case(P, "/api/v1/session", EVERYONE, {a: 400 for a in EVERYONE}, json={}),
    # --- anyone signed in: own things ----------------------------------------------------------
    case(G, "/", SIGNED_IN),
    case(G, "/me", SIGNED_IN),
    case(P, "/me/preferences", SIGNED_IN, form={"language": "", "large_text": ""}),
    case(G, "/me/password", SIGNED_IN),
    case(P, "/me/password", SIGNED_IN, {a: 400 for a in SIGNED_IN}),
    case(P, "/me/tokens", SIGNED_IN, {a: 400 for a in SIGNED_IN}),
    # Another's token is "no such token" (400), and stays unrevoked (the database check).
    case(P, "/me/tokens/{token}/revoke", {MEMBER_A}, {a: 400 for a in SIGNED_IN - {MEMBER_A}}),
    # Two-factor sign-in: organizers and admins may turn it on (MFA_REQUIRED_ROLES aside).
    case(G, "/me/two-factor", ENROLLERS),
    case(P, "/me/two-factor/setup", ENROLLERS),
    case(P, "/me/two-factor/confirm", ENROLLERS, {a: 400 for a in ENROLLERS}),  # no code
    case(P, "/me/two-factor/recovery-codes", ENROLLERS, {a: 400 for a in ENROLLERS}),
    case(P, "/me/two-factor/disable", ENROLLERS, {a: 400 for a in ENROLLERS}),
    case(G, "/me/record", SIGNED_IN),
    case(G, "/me/record.pdf", SIGNED_IN),
    case(G, "/notifications", SIGNED_IN),
    case(P, "/notifications/read", SIGNED_IN),
    case(G, "/daily", SIGNED_IN),
    case(P, "/daily", SIGNED_IN),
    case(G, "/search?q=党", SIGNED_IN),
    case(G, "/api/v1/search?q=党", SIGNED_IN),
    case(G, "/api/v1/me", SIGNED_IN),
    # --- courses and lessons as members see them ----------------------------------------------
    case(G, "/courses", SIGNED_IN),
    case(G, "/courses/{course}", SIGNED_IN),
    case(G, "/courses/{draft_course}", EDITORS),
    case(G, "/lessons/{lesson}", SIGNED_IN),
    case(G, "/lessons/{draft_lesson}", EDITORS),
    case(G, "/lessons/{draft_course_lesson}", EDITORS),  # published lesson, draft course
    case(G, "/media/r/{draft_course_rendition}/360p.mp4", EDITORS),
    case(P, "/lessons/{lesson}/quiz", SIGNED_IN),
    case(P, "/lessons/{draft_lesson}/quiz", EDITORS, {a: 404 for a in EDITORS}),  # no quiz there
    case(G, "/quizzes/attempts/{attempt}", {MEMBER_A}),
    case(P, "/quizzes/attempts/{attempt}/submit", {MEMBER_A}),
    case(G, "/media/r/{rendition}/360p.mp4", SIGNED_IN),
    case(G, "/media/r/{draft_rendition}/360p.mp4", EDITORS),
    case(G, "/media/attachments/{attachment}/doc.pdf", SIGNED_IN),
    case(G, "/media/attachments/{draft_attachment}/doc.pdf", EDITORS),
    case(G, "/media/subtitles/{subtitle}.vtt", SIGNED_IN),
    case(G, "/media/covers/{course}", SIGNED_IN),
    case(G, "/media/covers/{draft_course}", EDITORS),
    # start a viewing on lesson2: a new one on {lesson} would supersede member_a's {viewing}
    case(P, "/api/v1/lessons/{lesson2}/viewings", SIGNED_IN),
    case(P, "/api/v1/lessons/{draft_lesson}/viewings", EDITORS),
    case(P, "/api/v1/lessons/{lesson}/finished", SIGNED_IN, {a: 400 for a in SIGNED_IN}),  # a watch lesson
    case(P, "/api/v1/lessons/{draft_lesson}/finished", EDITORS, {a: 400 for a in EDITORS}),
    case(P, "/api/v1/viewings/{viewing}/beats", {MEMBER_A}, json={"seq": 1, "from": 0, "to": 1, "rate": 1}),
    case(G, "/api/v1/jobs/{transcode_job}", EDITORS),
    case(G, "/api/v1/jobs/{export}", {ORG_A, ADMIN}),  # its creator, and admins follow any job
    # --- authoring -------------------------------------------------------------------------------
    case(G, "/teach", LECTURERS),
    case(P, "/teach/courses", LECTURERS, {a: 400 for a in LECTURERS}),
    case(G, "/teach/courses/{course}", EDITORS),
    case(P, "/teach/courses/{course}", EDITORS),  # fields left out keep their values
    case(P, "/teach/courses/{course}/state", EDITORS),
    case(P, "/teach/courses/{course}/lecturers", OWNER_OR_ADMIN, {a: 400 for a in OWNER_OR_ADMIN}),
    case(P, "/teach/courses/{course}/lecturers/{spare_lecturer}/remove", OWNER_OR_ADMIN),
    case(P, "/teach/courses/{course}/lessons", EDITORS, {a: 400 for a in EDITORS}),
    case(G, "/teach/courses/{draft_course}", EDITORS),
    case(G, "/teach/lessons/{lesson}", EDITORS),
    case(P, "/teach/lessons/{lesson}", EDITORS),
    case(P, "/teach/lessons/{lesson2}/state", EDITORS),
    case(P, "/teach/lessons/{lesson2}/move", EDITORS),
    case(P, "/teach/attachments/{attachment_delete}/delete", EDITORS),
    case(G, "/teach/courses/{course}/questions", EDITORS),
    case(G, "/teach/courses/{course}/questions/new", EDITORS),
    case(P, "/teach/courses/{course}/questions/new", EDITORS, {a: 400 for a in EDITORS}),
    case(G, "/teach/courses/{course}/questions/{question}", EDITORS),
    case(P, "/teach/courses/{course}/questions/{question}", EDITORS, {a: 400 for a in EDITORS}),
    case(P, "/teach/courses/{course}/questions/{question_delete}/delete", EDITORS),
    # L2 edits their own course, but L1's question is not in it, whatever the URL says.
    case(G, "/teach/courses/{other_course}/questions/{question}", set()),
    case(P, "/teach/courses/{other_course}/questions/{question}/delete", set()),
    case(G, "/teach/courses/{other_course}", {LECTURER, ADMIN}),
    case(G, "/teach/lessons/{lesson2}/quiz", EDITORS),
    case(P, "/teach/lessons/{lesson2}/quiz", EDITORS, {a: 400 for a in EDITORS}),
    case("PATCH", "/api/v1/courses/{course}", EDITORS, json={}),
    case(
        P,
        "/api/v1/uploads",
        EDITORS,
        json={"purpose": "attachment", "filename": "a.pdf", "size": 10, "lesson_id": "{lesson2}"},
    ),
    case(
        P,
        "/api/v1/uploads",
        EDITORS,
        json={"purpose": "cover", "filename": "c.png", "size": 10, "course_id": "{course}"},
    ),
    # Uploads are their starter's alone (not even an admin's to continue).
    case(G, "/api/v1/uploads/{upload}", {OWNER}),
    case("PUT", "/api/v1/uploads/{upload}?offset=0", {OWNER}),
    case(P, "/api/v1/uploads/{upload_complete}/complete", {OWNER}, {OWNER: 400}),  # incomplete
    # --- organizers: lists over "my subtree" -----------------------------------------------------
    case(G, "/members", ORGANIZERS),
    case(G, "/audit", ORGANIZERS),
    case(G, "/audit.csv", ORGANIZERS),
    case(G, "/api/v1/members", ORGANIZERS),
    case(G, "/plans", ORGANIZERS),
    case(G, "/meetings", ORGANIZERS),
    case(G, "/warnings", ORGANIZERS),
    case(G, "/reports/hours", ORGANIZERS),
    case(G, "/reports/hours.csv", ORGANIZERS),
    case(G, "/reports/hours.xlsx", ORGANIZERS),
    case(G, "/reports/courses", ORGANIZERS),
    # a course report shows each organizer their own members' figures
    case(G, "/reports/courses/{course}", ORGANIZERS),
    case(G, "/reports/courses/{course}.csv", ORGANIZERS),
    case(G, "/reports/courses/{course}.xlsx", ORGANIZERS),
    case(G, "/compare", ORGANIZERS),
    case(G, "/compare.csv", ORGANIZERS),
    case(G, "/compare.xlsx", ORGANIZERS),
    case(P, "/reports/exports", ORGANIZERS, {a: 400 for a in ORGANIZERS}),
    case(G, "/plans/new", ORGANIZERS),
    case(P, "/plans/new", ORGANIZERS, {a: 400 for a in ORGANIZERS}),
    case(G, "/meetings/new", ORGANIZERS),
    case(P, "/meetings/new", ORGANIZERS, {a: 400 for a in ORGANIZERS}),
    case(G, "/meetings/group-viewing/new", ORGANIZERS),
    case(P, "/meetings/group-viewing/new", ORGANIZERS),  # no lesson chosen: the picker again
    case(G, "/members/new", ORGANIZERS),
    case(P, "/members/new", ORGANIZERS, {a: 400 for a in ORGANIZERS}),
    # --- organizers: targets in district A -------------------------------------------------------
    case(G, "/reports/hours?org_id={branch}", DISTRICT_A),
    case(G, "/reports/hours.csv?org_id={branch}", DISTRICT_A),
    case(G, "/reports/courses?org_id={branch}", DISTRICT_A),
    case(G, "/reports/courses/{course}?org_id={branch}", DISTRICT_A),
    case(G, "/compare?org_id={street}", DISTRICT_A),
    case(G, "/members?org_id={branch}", DISTRICT_A),
    case(G, "/audit?org_id={branch}", DISTRICT_A),
    case(G, "/audit.csv?org_id={branch}", DISTRICT_A),
    case(G, "/api/v1/members?org_id={branch}", DISTRICT_A),
    case(G, "/plans/new?org_id={branch}", DISTRICT_A),
    case(G, "/meetings/new?org_id={branch}", DISTRICT_A),
    case(G, "/meetings/group-viewing/new?org_id={branch}&lesson_id={lesson}", DISTRICT_A),
    case(G, "/members/new?org_id={branch}", DISTRICT_A),
    case(G, "/orgs/{street}", DISTRICT_A),
    case(G, "/orgs/{city}", ADMINS),
    case(G, "/api/v1/orgs/{city}", ADMINS),
    case(G, "/orgs/{district}/rename", ADMINS),  # an organizer's own root is not theirs to change
    case(P, "/orgs/{district}/close", ADMINS),
    case(G, "/api/v1/orgs/{street}", DISTRICT_A),
    case(G, "/orgs/{street}/new", DISTRICT_A),
    case(P, "/orgs/{street}/new", DISTRICT_A, {a: 400 for a in DISTRICT_A}),
    case(G, "/orgs/{branch}/rename", DISTRICT_A),
    case(P, "/orgs/{branch}/rename", DISTRICT_A, {a: 400 for a in DISTRICT_A}),
    case(G, "/orgs/{branch}/move", DISTRICT_A),
    case(P, "/orgs/{branch}/move", DISTRICT_A, {a: 400 for a in DISTRICT_A}),
    case(P, "/orgs/{branch}/close", DISTRICT_A),  # refused with a message: it has members
    case(P, "/orgs/{branch}/reopen", DISTRICT_A),  # refused with a message: it is open
    case(G, "/orgs/{branch}/import", DISTRICT_A),
    case(P, "/orgs/{branch}/import", DISTRICT_A, {a: 400 for a in DISTRICT_A}),
    case(P, "/orgs/{branch}/import/{import_token}/apply", DISTRICT_A),
    case(G, "/orgs/{branch}/import/template.csv", DISTRICT_A),
    case(G, "/orgs/{branch}/import/template.xlsx", DISTRICT_A),
    case(G, "/members/{member}", DISTRICT_A),
    case(G, "/members/{member}/edit", DISTRICT_A),
    case(P, "/members/{spare}/edit", DISTRICT_A, {a: 400 for a in DISTRICT_A}),
    case(P, "/members/{spare}/deactivate", DISTRICT_A),
    case(P, "/members/{spare}/reactivate", DISTRICT_A),
    case(P, "/members/{spare}/reset-password", DISTRICT_A),
    case(P, "/members/{spare}/reset-two-factor", DISTRICT_A),
    case(G, "/members/{member}/transfer", DISTRICT_A),
    case(P, "/members/{spare}/transfer", DISTRICT_A, {a: 400 for a in DISTRICT_A}),
    case(G, "/plans/{plan}", DISTRICT_A),
    case(G, "/plans/{plan}/edit", DISTRICT_A),
    case(P, "/plans/{plan}/edit", DISTRICT_A, {a: 400 for a in DISTRICT_A}),
    case(P, "/plans/{spare_plan}/close", DISTRICT_A),
    case(P, "/plans/{spare_plan}/reopen", DISTRICT_A),
    case(G, "/reports/plans/{plan}", DISTRICT_A),
    case(G, "/reports/plans/{plan}.csv", DISTRICT_A),
    case(G, "/reports/plans/{plan}.xlsx", DISTRICT_A),
    case(G, "/compare?org_id={street}&plan_id={plan}", DISTRICT_A),
    case(G, "/compare?org_id={street}&plan_id={plan_b}", ADMINS),
    case(G, "/reports/plans/{plan_b}", {ORG_B, ADMIN}),
    case(G, "/reports/courses/{draft_course}", set()),  # only published courses are reported on
    case(G, "/meetings/group-viewing/new?lesson_id={draft_lesson}", set()),
    case(G, "/meetings/{meeting}", DISTRICT_A),
    case(G, "/meetings/{meeting}/edit", DISTRICT_A),
    case(P, "/meetings/{meeting}/edit", DISTRICT_A, {a: 400 for a in DISTRICT_A}),
    case(P, "/meetings/{meeting_cancel}/cancel", DISTRICT_A, form={"reason": "记录有误"}),
    case(G, "/warnings/{warning}", DISTRICT_A),
    case(P, "/warnings/{warning}", DISTRICT_A, {a: 400 for a in DISTRICT_A}),  # a note is needed
    # Exports are their requester's alone (not even an admin's).
    case(G, "/reports/exports/{export}", {ORG_A}),
    case(G, "/reports/exports/{export}.json", {ORG_A}),
    case(G, "/reports/exports/{export}/download", {ORG_A}),
    # --- admins ----------------------------------------------------------------------------------
    case(G, "/warnings/rules", ADMINS),
    case(G, "/warnings/rules/new", ADMINS),
    case(P, "/warnings/rules/new", ADMINS, {ADMIN: 400}),
    case(G, "/warnings/rules/{rule}", ADMINS),
    case(P, "/warnings/rules/{rule}", ADMINS, {ADMIN: 400}),
    case(P, "/warnings/evaluate", ADMINS, form={"next": "index"}),
    # --- ending the session (last: each signs in again first) -----------------------------------
    case(P, "/sign-out", SIGNED_IN, {a: 302 for a in SIGNED_IN}, fresh_session=True),
    case("DELETE", "/api/v1/session", SIGNED_IN, fresh_session=True),
    case(P, "/me/sign-out-everywhere", SIGNED_IN, {a: 302 for a in SIGNED_IN}, fresh_session=True),
]


# --- the world ---------------------------------------------------------------------------------


def build_world(app) -> dict:
    """Every object the table points at; returns {placeholder: id or {actor: id, "*": id}}."""
    from school.accounts import service as accounts
    from school.courses import service as courses
    from school.jobs.models import Job
    from school.learning import service as learning
    from school.media import service as media
    from school.media import storage
    from school.media.models import Attachment, MediaAsset, Rendition, SubtitleTrack
    from school.meetings.models import Meeting
    from school.notifications import service as notifications
    from school.plans.models import PlanItem, PlanTarget, StudyPlan
    from school.quizzes import service as quizzes
    from school.reports import export_jobs
    from school.roster import importer
    from school.roster import service as roster
    from school.warnings import service as warnings
    from school.warnings.models import OrgWarning

    with app.test_request_context():
        tree = make_tree()
        people = {
            MEMBER_A: make_user(tree["branch_a1"], phone=PHONES[MEMBER_A], name="甲支部党员"),
            MEMBER_B: make_user(tree["branch_b1"], phone=PHONES[MEMBER_B], name="乙支部党员"),
            OWNER: make_user(roles=[("lecturer", None)], phone=PHONES[OWNER]),
            LECTURER: make_user(roles=[("lecturer", None)], phone=PHONES[LECTURER]),
            CO_LECTURER: make_user(roles=[("lecturer", None)], phone=PHONES[CO_LECTURER]),
            ORG_A: make_organizer(tree["district_a"], phone=PHONES[ORG_A]),
            ORG_B: make_organizer(tree["district_b"], phone=PHONES[ORG_B]),
            ADMIN: make_admin(phone=PHONES[ADMIN]),
        }
        spare = make_user(tree["branch_a1"], phone="13900000009", name="甲支部备用党员")
        spare_lecturer = make_user(roles=[("lecturer", None)], phone="13900000010")
        owner, member_a, org_a = people[OWNER], people[MEMBER_A], people[ORG_A]
        now = db.utcnow()

        def put_file(relative: str, data: bytes) -> str:
            path = storage.absolute(relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return relative

        def lesson_with_media(course, title, state):
            lesson = courses.create_lesson(course, title)
            courses.update_lesson(lesson, title, "党的基本知识正文", "1", "watch")
            asset = MediaAsset(
                lesson_id=lesson.id, state="ready", kind="video", duration=60.0, has_video=True
            )
            db.session.add(asset)
            db.session.flush()
            lesson.media_id = asset.id
            rendition = Rendition(
                asset_id=asset.id,
                name="360p",
                mime="video/mp4",
                path=put_file(f"r/{asset.id}/360p.mp4", b"\0" * 64),
            )
            attachment = Attachment(
                lesson_id=lesson.id,
                filename="doc.pdf",
                kind="pdf",
                mime="application/pdf",
                state="ready",
                path=put_file(f"a/{lesson.id}/doc.pdf", b"%PDF-1.4\n"),
            )
            db.session.add_all([rendition, attachment])
            if state == "published":
                courses.set_lesson_state(lesson, "published")
            db.session.flush()
            return lesson, asset, rendition, attachment

        course = courses.create_course(owner, "党章学习", "简介", "党章")
        lesson, asset, rendition, attachment = lesson_with_media(course, "第一课", "published")
        lesson2 = courses.create_lesson(course, "第二课")
        courses.update_lesson(lesson2, "第二课", "正文", "0.5", "read")
        courses.set_lesson_state(lesson2, "published")
        draft_lesson, _a, draft_rendition, draft_attachment = lesson_with_media(course, "草稿课", "draft")
        courses.set_course_state(course, "published", now)
        course.cover_path = put_file(f"covers/{course.id}.png", b"\x89PNG\r\n\x1a\n")
        for lecturer in (people[CO_LECTURER], spare_lecturer):
            courses.add_co_lecturer(course, lecturer.phone)
        subtitle = SubtitleTrack(lesson_id=lesson.id, path=put_file(f"s/{lesson.id}.vtt", b"WEBVTT\n"))
        db.session.add(subtitle)
        attachments_to_delete = {}
        for actor in (OWNER, CO_LECTURER, ADMIN):
            item = Attachment(
                lesson_id=lesson2.id,
                filename=f"{actor}.pdf",
                kind="pdf",
                mime="application/pdf",
                state="ready",
                path=put_file(f"a/{lesson2.id}/{actor}.pdf", b"%PDF-1.4\n"),
            )
            db.session.add(item)
            db.session.flush()
            attachments_to_delete[actor] = item.id

        draft_course = courses.create_course(owner, "草稿课程", "简介", "")
        draft_course_lesson, _b, draft_course_rendition, _d = lesson_with_media(
            draft_course, "草稿课程第一课", "published"
        )
        draft_course.cover_path = put_file(f"covers/{draft_course.id}.png", b"\x89PNG\r\n\x1a\n")
        courses.add_co_lecturer(draft_course, people[CO_LECTURER].phone)
        other_course = courses.create_course(people[LECTURER], "另一位讲师的课程", "简介", "")

        questions = [
            quizzes.save_question(
                course, quizzes.check_question("truefalse", f"判断题{n}", [], [True], "解析")
            )
            for n in range(4)
        ]
        quizzes.set_quiz_settings(lesson, True, 1, 60, 0, "highest")
        db.session.commit()
        attempt = quizzes.start_lesson_attempt(member_a, lesson, now)
        viewing, _progress = learning.start_session(member_a, lesson)
        _token, _raw = accounts.create_token(member_a, "脚本")
        token = _token
        notifications.send(member_a, "plan", "甲支部的私人通知", key="matrix")

        plan = StudyPlan(
            org_id=tree["branch_a1"].id,
            title="甲支部专属学习计划",
            starts_on=date.today() - timedelta(days=10),
            due_on=date.today() + timedelta(days=30),
            items=[PlanItem(course_id=course.id)],
            created_by_id=org_a.id,
        )
        spare_plan = StudyPlan(
            org_id=tree["district_a"].id,
            title="甲区备用计划",
            starts_on=date.today() - timedelta(days=10),
            due_on=date.today() + timedelta(days=30),
            items=[PlanItem(course_id=course.id)],
            targets=[PlanTarget(kind="category", category="retired")],
            created_by_id=org_a.id,
        )
        meetings = [
            Meeting(
                org_id=tree["branch_a1"].id,
                kind="lecture",
                held_on=date.today() - timedelta(days=1),
                topic=f"甲支部党课{n}",
                hours=Decimal("1"),
                recorded_by_id=org_a.id,
            )
            for n in range(3)
        ]
        plan_b = StudyPlan(
            org_id=tree["district_b"].id,
            title="乙区计划",
            starts_on=date.today() - timedelta(days=10),
            due_on=date.today() + timedelta(days=30),
            items=[PlanItem(course_id=course.id)],
        )
        db.session.add_all([plan, spare_plan, plan_b, *meetings])
        warnings.ensure_default_rules()
        db.session.flush()
        rule = warnings.rules()[0]
        warning = OrgWarning(rule_id=rule.id, org_id=tree["branch_a1"].id, level="yellow", state="open")
        db.session.add(warning)

        export = Job(
            kind=export_jobs.JOB_KIND,
            args={"kind": "hours", "format": "csv", "params": {}},
            state="done",
            progress=100,
            created_by_id=org_a.id,
            finished_at=now,
            result={"file": "matrix.csv", "filename": "报表.csv"},
        )
        (export_jobs.export_dir() / "matrix.csv").write_text("a,b\n")
        transcode = Job(kind="media.transcode", args={"asset_id": asset.id}, created_by_id=owner.id)
        db.session.add_all([export, transcode])
        upload = media.start_upload(owner, "attachment", "x.pdf", 10, now, lesson2)
        upload_complete = media.start_upload(owner, "attachment", "y.pdf", 10, now, lesson2)
        db.session.commit()

        csv_data = ",".join(importer.HEADERS) + "\n" + "甲支部党员,13900000001,a街道第1支部,,,\n"
        import_tokens = {}
        for actor in (ORG_A, ADMIN):
            by = people[actor]
            branch = tree["branch_a1"]
            data = csv_data.encode("utf-8")
            digest = roster.make_plan(by, branch, data, "m.csv", app.config).digest()
            import_tokens[actor] = roster.save_upload(
                app.instance_path, data, "m.csv", by.id, branch.id, digest
            )
        db.session.rollback()

        world = {
            "branch": tree["branch_a1"].id,
            "branch_b": tree["branch_b1"].id,
            "street": tree["street_a"].id,
            "district": tree["district_a"].id,
            "city": tree["city"].id,
            "other_course": other_course.id,
            "plan_b": plan_b.id,
            "draft_course_lesson": draft_course_lesson.id,
            "draft_course_rendition": draft_course_rendition.id,
            "district_b": tree["district_b"].id,
            "member": member_a.id,
            "member_b": people[MEMBER_B].id,
            "spare": spare.id,
            "spare_lecturer": spare_lecturer.id,
            "course": course.id,
            "lesson": lesson.id,
            "lesson2": lesson2.id,
            "draft_course": draft_course.id,
            "draft_lesson": draft_lesson.id,
            "rendition": rendition.id,
            "draft_rendition": draft_rendition.id,
            "attachment": attachment.id,
            "draft_attachment": draft_attachment.id,
            "subtitle": subtitle.id,
            "attachment_delete": {**attachments_to_delete, "*": attachments_to_delete[OWNER]},
            "question": questions[0].id,
            "question_delete": {
                OWNER: questions[1].id,
                CO_LECTURER: questions[2].id,
                ADMIN: questions[3].id,
                "*": questions[1].id,
            },
            "attempt": attempt.id,
            "viewing": viewing.id,
            "token": token.id,
            "plan": plan.id,
            "spare_plan": spare_plan.id,
            "meeting": meetings[0].id,
            "meeting_cancel": {ORG_A: meetings[1].id, ADMIN: meetings[2].id, "*": meetings[1].id},
            "warning": warning.id,
            "rule": rule.id,
            "export": export.id,
            "transcode_job": transcode.id,
            "upload": upload.id,
            "upload_complete": upload_complete.id,
            "import_token": {**import_tokens, "*": import_tokens[ORG_A]},
            "people": {actor: user.id for actor, user in people.items()},
        }
    return world


# --- walking the table -------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{(\w+)\}")
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def fill(text: str, world: dict, actor: str) -> str:
    """The text with each {name} replaced by the world's id (the actor's own where it has one)."""

    def one(match):
        value = world[match.group(1)]
        if isinstance(value, dict):
            value = value.get(actor, value["*"])
        return str(value)

    return PLACEHOLDER.sub(one, text)


def fill_json(body, world: dict, actor: str):
    if isinstance(body, dict):
        return {k: fill_json(v, world, actor) for k, v in body.items()}
    if isinstance(body, str) and PLACEHOLDER.fullmatch(body):
        value = fill(body, world, actor)
        return int(value) if value.isdigit() else value
    return body


def outcome(status: int, location: str = ""):
    """ALLOW for a normal answer, DENY for a refusal, else the status itself."""
    if status in (401, 403, 404) or (status in (302, 303) and location.startswith("/sign-in")):
        return DENY
    if 200 <= status < 400:
        return ALLOW
    return status


def mismatches(item: Case, observed: dict) -> list[str]:
    """What the walk saw against what the table says, one line per actor that differs.

    `observed` maps actor → (status, location).
    """
    wrong = []
    for actor, (status, location) in observed.items():
        expected = item.expected(actor)
        seen = outcome(status, location)
        if isinstance(expected, tuple):
            ok = status in expected
        else:
            ok = status == expected if isinstance(expected, int) else seen == expected
        if not ok:
            wrong.append(f"{item.method} {item.url} as {actor}: expected {expected}, got {status} {location}")
    return wrong


def route_keys(app) -> set[tuple[str, str]]:
    """(endpoint, method) of every route in the url_map, HEAD and OPTIONS aside."""
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def classified(app, table: list[Case]) -> set[tuple[str, str]]:
    """(endpoint, method) pairs the table's requests reach."""
    adapter = app.url_map.bind("localhost")
    found = set()
    for item in table:
        path = PLACEHOLDER.sub("1", item.url).split("?")[0]
        endpoint, _args = adapter.match(path, method=item.method)
        found.add((endpoint, item.method))
    return found


def unclassified(app, table: list[Case]) -> list[str]:
    return sorted(f"{method} {endpoint}" for endpoint, method in route_keys(app) - classified(app, table))


def snapshot() -> dict:
    """Every row of every table, to compare before and after refused requests."""
    db.session.remove()
    rows = {}
    with db.engine.connect() as conn:
        for table in db.Base.metadata.sorted_tables:
            if table.name.startswith("audit"):
                continue  # a refusal may well be logged: that is not a change to what it targets
            rows[table.name] = sorted(repr(tuple(r)) for r in conn.execute(sa.select(table)))
    return rows


def changed_tables(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


def signed_in_client(app, user_id: int):
    """A client with a session of this user, as signing in leaves it (without the password hash
    check: scrypt would be most of this module's run time; tests/accounts tests signing in)."""
    from school.accounts.models import User

    db.session.remove()
    user = db.session.get(User, user_id)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    db.session.remove()
    return client


class Actors:
    """One signed-in test client per actor (anonymous: a client that never signs in)."""

    def __init__(self, app, world: dict):
        self.app, self.world = app, world
        self.clients = {actor: self.fresh(actor) for actor in ACTORS}
        self.tokens = {}

    def fresh(self, actor: str):
        if actor == ANON:
            return self.app.test_client()
        return signed_in_client(self.app, self.world["people"][actor])

    def send(self, client, actor: str, item: Case, world: dict):
        url = fill(item.url, world, actor)
        if id(client) not in self.tokens:
            self.tokens[id(client)] = (client, api_token(client))  # the client kept: ids stay unique
        token = self.tokens[id(client)][1]
        headers = {"X-CSRFToken": token}
        kwargs = {"headers": headers}
        if item.json is not None:
            kwargs["json"] = fill_json(item.json, world, actor)
        elif item.method == "PUT":
            kwargs["data"] = b""
        elif item.method in STATE_CHANGING:
            kwargs["data"] = {**(item.form or {}), "csrf_token": token}
        response = client.open(url, method=item.method, **kwargs)
        return response.status_code, response.headers.get("Location", "")


def walk(app, table: list[Case], world: dict) -> list[str]:
    """Make every request of the table as every actor; returns every difference from the table."""
    actors = Actors(app, world)
    problems = []
    for item in table:
        refused = [a for a in item.only if item.expected(a) == DENY]
        others = [a for a in item.only if a not in refused]
        observed = {}
        writes = item.method in STATE_CHANGING
        before = snapshot() if writes else None
        for actor in refused + others:  # refusals first: they must find the target untouched
            client = actors.fresh(actor) if item.fresh_session else actors.clients[actor]
            observed[actor] = actors.send(client, actor, item, world)
            if writes and refused and actor == refused[-1]:
                changed = changed_tables(before, snapshot())
                if changed:
                    problems.append(f"{item.method} {item.url}: refused requests changed {changed}")
        problems += mismatches(item, observed)
    return problems


@pytest.fixture()
def fast_hash(monkeypatch):
    """Users of this module get one precomputed hash of the factories' password (scrypt per user
    would be most of the run time; password hashing is tested in tests/accounts)."""
    from werkzeug.security import generate_password_hash

    from school.accounts import service

    digest = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    monkeypatch.setattr(service, "hash_password", lambda _password: digest)


# --- the tests ---------------------------------------------------------------------------------


def test_every_route_is_in_the_table(app):
    missing = unclassified(app, MATRIX)
    assert missing == [], "routes the matrix does not classify:\n" + "\n".join(missing)


def test_every_actor_gets_exactly_what_the_table_says(app, fast_hash):
    world = build_world(app)
    problems = walk(app, MATRIX, world)
    assert problems == [], "\n" + "\n".join(problems)


def test_the_walk_reports_an_unexpected_200_and_a_wrong_refusal():
    admins_only = case(G, "/warnings/rules", ADMINS)
    assert mismatches(admins_only, {ADMIN: (200, ""), ORG_A: (403, ""), ANON: (302, "/sign-in?next=x")}) == []
    wrong = mismatches(admins_only, {MEMBER_A: (200, ""), ADMIN: (404, "")})
    assert [line.split(" as ")[1].split(":")[0] for line in wrong] == [MEMBER_A, ADMIN]
    # A 400 (a CSRF failure, say) is neither an allowance nor a refusal unless the table says so.
    assert mismatches(case(P, "/daily", SIGNED_IN), {MEMBER_A: (400, "")}) != []
    assert mismatches(case(P, "/me/tokens", SIGNED_IN, {MEMBER_A: 400}), {MEMBER_A: (400, "")}) == []


def test_a_route_missing_from_the_table_is_reported():
    from school import access, create_app
    from tests.conftest import DATABASE_URL

    other = create_app({"DATABASE_URL": DATABASE_URL, "TESTING": True})

    @other.post("/forgotten/<int:thing_id>")
    @access.admin
    def forgotten(thing_id):
        return "secret"

    assert unclassified(other, MATRIX) == ["POST forgotten"]


# --- IDOR: ids in query strings, JSON bodies and paging ----------------------------------------


def small_world(app):
    """Two branches with a member each, their organizers, and L1's course with a draft lesson."""
    from school.courses import service as courses
    from school.notifications import service as notifications

    with app.test_request_context():
        tree = make_tree()
        people = {
            MEMBER_A: make_user(tree["branch_a1"], phone=PHONES[MEMBER_A], name="甲支部党员"),
            MEMBER_B: make_user(tree["branch_b1"], phone=PHONES[MEMBER_B], name="乙支部党员"),
            OWNER: make_user(roles=[("lecturer", None)], phone=PHONES[OWNER]),
            LECTURER: make_user(roles=[("lecturer", None)], phone=PHONES[LECTURER]),
            CO_LECTURER: make_user(roles=[("lecturer", None)], phone=PHONES[CO_LECTURER]),
            ORG_A: make_organizer(tree["district_a"], phone=PHONES[ORG_A]),
            ORG_B: make_organizer(tree["district_b"], phone=PHONES[ORG_B]),
        }
        course = courses.create_course(people[OWNER], "党章学习", "简介", "")
        lesson = courses.create_lesson(course, "第一课")
        courses.update_lesson(lesson, "第一课", "正文", "1", "confirm")
        courses.set_lesson_state(lesson, "published")
        draft = courses.create_lesson(course, "草稿课")
        courses.update_lesson(draft, "草稿课", "正文", "1", "confirm")
        courses.set_course_state(course, "published", db.utcnow())
        courses.add_co_lecturer(course, PHONES[CO_LECTURER])
        notifications.send(people[MEMBER_B], "plan", "乙支部的私人通知", key="b")
        db.session.commit()
        return tree, people, course, lesson, draft


def client_of(app, user):
    return signed_in_client(app, user.id)


def send_json(client, method, url, body):
    return client.open(url, method=method, json=body, headers={"X-CSRFToken": api_token(client)})


def post_form(client, url, data):
    token = api_token(client)
    return client.post(url, data={**data, "csrf_token": token}, headers={"X-CSRFToken": token})


def test_ids_in_query_strings_do_not_show_a_member_anothers_data(app, fast_hash):
    _tree, people, *_ = small_world(app)
    member = client_of(app, people[MEMBER_A])
    other = people[MEMBER_B]
    for url in (
        f"/me/record?user_id={other.id}",
        f"/notifications?user_id={other.id}&page=1",
        f"/?user_id={other.id}",
        f"/me?user_id={other.id}",
    ):
        html = member.get(url).get_data(as_text=True)
        assert "乙支部党员" not in html and "乙支部的私人通知" not in html, url
    assert member.get(f"/api/v1/me?user_id={other.id}").get_json()["id"] == people[MEMBER_A].id
    assert member.get(f"/api/v1/members?org_id={other.home_org_id}").status_code == 403


def test_api_member_pages_hold_only_the_organizers_subtree(app, fast_hash):
    tree, people, *_ = small_world(app)
    with app.app_context():
        for n in range(4):
            make_user(tree["branch_a2"], name=f"甲二支部党员{n}")
            make_user(tree["branch_b2"], name=f"乙二支部党员{n}")
    organizer = client_of(app, people[ORG_A])
    seen, page = [], 1
    while True:
        data = organizer.get(f"/api/v1/members?per_page=2&page={page}").get_json()
        seen += [item["home_org"]["id"] for item in data["items"]]
        if not data["items"]:
            break
        page += 1
    assert len(seen) == data["total"] == 5
    district_a = {tree[k].id for k in ("branch_a1", "branch_a2")}
    assert set(seen) <= district_a
    # Searching for the other district's member by phone finds nothing, on every page.
    found = organizer.get(f"/api/v1/members?q={PHONES[MEMBER_B]}&page=1").get_json()
    assert found["items"] == [] and found["total"] == 0
    assert organizer.get(f"/api/v1/members?page=99999&org_id={tree['branch_b1'].id}").status_code == 403


def test_json_calls_naming_a_lesson_or_session_one_may_not_see_change_nothing(app, fast_hash):
    from school.learning.models import LessonProgress, ViewingSession

    _tree, people, course, lesson, draft = small_world(app)
    member, other = client_of(app, people[MEMBER_A]), client_of(app, people[MEMBER_B])
    assert send_json(member, "POST", f"/api/v1/lessons/{draft.id}/viewings", {}).status_code == 403
    assert send_json(member, "POST", f"/api/v1/lessons/{draft.id}/finished", {}).status_code == 403
    assert send_json(member, "POST", "/api/v1/lessons/99999999/finished", {}).status_code == 404
    started = send_json(other, "POST", f"/api/v1/lessons/{lesson.id}/viewings", {})
    assert started.status_code == 201
    session_id = started.get_json()["session_id"]
    # member_a replays member_b's session id with a beat: not found, member_b's row untouched.
    beat = member.post(f"/api/v1/viewings/{session_id}/beats", json={"seq": 1, "read": 5})
    assert beat.status_code == 404
    lecturer = client_of(app, people[LECTURER])
    body = {"title": "被改的标题", "description": "x", "tags": []}
    assert send_json(lecturer, "PATCH", f"/api/v1/courses/{course.id}", body).status_code == 403
    upload = {"purpose": "attachment", "filename": "a.pdf", "size": 10, "lesson_id": draft.id}
    assert send_json(lecturer, "POST", "/api/v1/uploads", upload).status_code == 403
    with app.app_context():
        row = db.session.get(ViewingSession, session_id)
        assert row.last_seq == 0 and row.user_id == people[MEMBER_B].id
        assert (
            db.session.scalars(
                sa.select(LessonProgress).where(LessonProgress.user_id == people[MEMBER_A].id)
            ).all()
            == []
        )
        from school.courses.models import Course

        assert db.session.get(Course, course.id).title == "党章学习"


# --- mass assignment -----------------------------------------------------------------------------

PRIVILEGED = {
    "role": "admin",
    "roles": "admin",
    "org_id": "{org}",
    "home_org_id": "{org}",
    "organizer_of": "{org}",
    "active": "0",
    "is_active": "0",
    "must_change_password": "1",
    "session_version": "99",
    "owner_id": "{user}",
    "id": "1",
}


def account_row(app, user_id: int) -> dict:
    from school.accounts.models import User

    with app.app_context():
        user = db.session.get(User, user_id)
        return {
            "roles": sorted((g.role, g.org_id) for g in user.grants),
            "home_org_id": user.home_org_id,
            "active": user.active,
            "must_change_password": user.must_change_password,
            "session_version": user.session_version,
            "display_name": user.display_name,
            "phone": user.phone,
        }


def privileged(org_id: int, user_id: int) -> dict:
    return {k: v.replace("{org}", str(org_id)).replace("{user}", str(user_id)) for k, v in PRIVILEGED.items()}


def test_a_member_cannot_give_themself_roles_or_another_branch(app, fast_hash):
    tree, people, *_ = small_world(app)
    me = people[MEMBER_A]
    before = account_row(app, me.id)
    member = client_of(app, me)
    extra = privileged(tree["branch_b1"].id, me.id) | {"display_name": "改名", "phone": "13911112222"}
    response = post_form(member, "/me/preferences", extra | {"language": "en", "large_text": "y"})
    assert response.status_code == 302
    assert post_form(member, "/me/tokens", extra | {"name": "脚本"}).status_code == 302
    assert (
        send_json(
            member, "POST", "/api/v1/session", extra | {"login": me.phone, "password": PASSWORD}
        ).status_code
        == 200
    )
    assert account_row(app, me.id) == before  # only language and large text changed
    assert member.get("/api/v1/me").get_json()["language"] == "en"
    assert member.get("/members").status_code == 403 and member.get("/warnings/rules").status_code == 403


def test_an_organizer_edit_cannot_grant_roles_or_place_a_member_outside_the_subtree(app, fast_hash):
    from school.accounts.models import User

    tree, people, *_ = small_world(app)
    target = people[MEMBER_A]
    organizer = client_of(app, people[ORG_A])
    foreign = tree["branch_b1"].id
    edit = privileged(foreign, people[ORG_A].id) | {"name": "改过的名字", "phone": target.phone}
    assert post_form(organizer, f"/members/{target.id}/edit", edit).status_code == 302
    after = account_row(app, target.id)
    assert after["display_name"] == "改过的名字"
    assert after["roles"] == [("member", None)] and after["home_org_id"] == tree["branch_a1"].id
    assert after["active"] and after["session_version"] == 1

    with app.app_context():
        users_before = db.session.scalar(sa.select(sa.func.count(User.id)))
    new = privileged(foreign, people[ORG_A].id) | {"name": "新党员", "phone": "13922223333"}
    assert post_form(organizer, "/members/new", new).status_code in (400, 403)
    moved = post_form(organizer, f"/members/{target.id}/transfer", {"org_id": str(foreign), "reason": "x"})
    assert moved.status_code in (400, 403)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == users_before
    assert account_row(app, target.id)["home_org_id"] == tree["branch_a1"].id


def test_course_edits_cannot_change_its_owner_or_lecturers(app, fast_hash):
    from school.courses.models import Course

    _tree, people, course, *_ = small_world(app)
    co = client_of(app, people[CO_LECTURER])
    body = {"title": "新标题", "owner_id": people[CO_LECTURER].id, "state": "draft", "co_lecturer_ids": []}
    assert send_json(co, "PATCH", f"/api/v1/courses/{course.id}", body).status_code == 200
    form = {"title": "再改标题", "owner_id": str(people[LECTURER].id), "state": "draft"}
    assert post_form(co, f"/teach/courses/{course.id}", form).status_code == 302
    # The co-lecturer may not manage lecturers, whatever the form says.
    added = post_form(co, f"/teach/courses/{course.id}/lecturers", {"login": PHONES[LECTURER]})
    assert added.status_code == 403
    with app.app_context():
        row = db.session.get(Course, course.id)
        assert row.title == "再改标题" and row.state == "published"
        assert row.owner_id == people[OWNER].id and row.co_lecturer_ids == {people[CO_LECTURER].id}


# --- revocations take effect on the next request --------------------------------------------------


def test_a_member_transferred_out_no_longer_sees_the_branch_plan_on_the_next_request(app, fast_hash):
    from school.plans.models import PlanItem, StudyPlan
    from school.roster import members

    tree, people, course, *_ = small_world(app)
    with app.app_context():
        db.session.add(
            StudyPlan(
                org_id=tree["branch_a1"].id,
                title="甲支部专属学习计划",
                starts_on=date.today() - timedelta(days=10),
                due_on=date.today() + timedelta(days=30),
                items=[PlanItem(course_id=course.id)],
            )
        )
        db.session.commit()
    member = client_of(app, people[MEMBER_A])
    assert "甲支部专属学习计划" in member.get("/").get_data(as_text=True)
    assert "党章学习" in member.get("/courses?show=assigned").get_data(as_text=True)
    with app.test_request_context():
        admin = make_admin()
        person = db.session.get(type(admin), people[MEMBER_A].id)
        members.transfer_member(admin, person, tree["branch_b1"].id, "调动", db.utcnow())
        db.session.commit()
    assert "甲支部专属学习计划" not in member.get("/").get_data(as_text=True)
    assert "党章学习" not in member.get("/courses?show=assigned").get_data(as_text=True)


def test_an_organizer_whose_grant_moves_loses_the_old_subtree_and_its_exports(app, fast_hash):
    from school.accounts.models import RoleGrant
    from school.jobs.models import Job
    from school.reports import export_jobs

    tree, people, *_ = small_world(app)
    organizer = people[ORG_A]
    with app.app_context():
        job = Job(
            kind=export_jobs.JOB_KIND,
            args={"kind": "hours", "format": "csv", "params": {"org_id": str(tree["district_a"].id)}},
            state="done",
            created_by_id=organizer.id,
            finished_at=db.utcnow(),
            result={"file": "gone.csv", "filename": "甲区.csv", "org_id": tree["district_a"].id},
        )
        db.session.add(job)
        db.session.commit()
        (export_jobs.export_dir() / "gone.csv").write_text("甲区数据\n")
        job_id = job.id
    client = client_of(app, organizer)
    assert client.get(f"/members/{people[MEMBER_A].id}").status_code == 200
    assert client.get(f"/reports/exports/{job_id}/download").status_code == 200
    with app.app_context():
        grant = db.session.scalar(sa.select(RoleGrant).where(RoleGrant.user_id == organizer.id))
        grant.org_id = tree["district_b"].id
        db.session.commit()
    assert client.get(f"/members/{people[MEMBER_A].id}").status_code == 404
    for url in (
        f"/reports/exports/{job_id}",
        f"/reports/exports/{job_id}.json",
        f"/reports/exports/{job_id}/download",
    ):
        assert client.get(url).status_code == 404, url
    assert client.get(f"/members/{people[MEMBER_B].id}").status_code == 200


def test_a_co_lecturer_taken_off_the_course_cannot_finish_an_upload(app, fast_hash):
    from school.media import service as media
    from school.media.models import Attachment

    _tree, people, course, lesson, _draft = small_world(app)
    with app.test_request_context():
        upload = media.start_upload(people[CO_LECTURER], "attachment", "a.pdf", 9, db.utcnow(), lesson)
        db.session.commit()
        upload_id = upload.id
    co = client_of(app, people[CO_LECTURER])
    token = api_token(co)
    assert co.get(f"/api/v1/uploads/{upload_id}").status_code == 200
    owner = client_of(app, people[OWNER])
    removed = post_form(owner, f"/teach/courses/{course.id}/lecturers/{people[CO_LECTURER].id}/remove", {})
    assert removed.status_code == 302
    headers = {"X-CSRFToken": token}
    chunk = co.put(f"/api/v1/uploads/{upload_id}?offset=0", data=b"%PDF-1.4\n", headers=headers)
    assert chunk.status_code == 403
    assert co.post(f"/api/v1/uploads/{upload_id}/complete", headers=headers).status_code == 403
    assert co.get(f"/api/v1/uploads/{upload_id}").status_code == 403
    with app.app_context():
        assert db.session.scalars(sa.select(Attachment).where(Attachment.lesson_id == lesson.id)).all() == []


def test_a_bearer_token_follows_its_users_roles_and_branch_from_the_next_call(app, fast_hash):
    from school.accounts import service as accounts
    from school.accounts.models import RoleGrant, User

    tree, people, *_ = small_world(app)
    with app.app_context():
        _token, raw = accounts.create_token(db.session.get(User, people[ORG_A].id), "报表脚本")
        db.session.commit()
    bearer = {"Authorization": f"Bearer {raw}"}
    script = app.test_client()
    url = f"/api/v1/orgs/{tree['branch_a1'].id}"
    assert script.get(url, headers=bearer).status_code == 200
    with app.app_context():
        grant = db.session.scalar(sa.select(RoleGrant).where(RoleGrant.user_id == people[ORG_A].id))
        grant.org_id = tree["district_b"].id  # moved to the other district
        db.session.commit()
    assert script.get(url, headers=bearer).status_code == 403
    with app.app_context():
        db.session.execute(sa.delete(RoleGrant).where(RoleGrant.user_id == people[ORG_A].id))
        db.session.commit()
    assert script.get("/api/v1/members", headers=bearer).status_code == 403
    with app.app_context():
        db.session.get(User, people[ORG_A].id).active = False
        db.session.commit()
    assert script.get("/api/v1/me", headers=bearer).status_code == 401


def test_an_organizer_cannot_aim_a_plan_at_another_district(app, fast_hash):
    from school.plans.models import PlanItem, StudyPlan

    tree, people, course, *_ = small_world(app)
    with app.app_context():
        plan = StudyPlan(
            org_id=tree["district_a"].id,
            title="甲区计划",
            starts_on=date.today(),
            due_on=date.today() + timedelta(days=30),
            items=[PlanItem(course_id=course.id)],
        )
        db.session.add(plan)
        db.session.commit()
        plan_id = plan.id
    organizer = client_of(app, people[ORG_A])
    form = {
        "title": "改了的计划",
        "starts_on": date.today().isoformat(),
        "due_on": (date.today() + timedelta(days=30)).isoformat(),
        "courses": str(course.id),
        "org_id": str(tree["district_b"].id),
    }
    foreign = {"orgs": str(tree["branch_b1"].id)}
    assert post_form(organizer, f"/plans/{plan_id}/edit", form | foreign).status_code == 400
    named = {"members": PHONES[MEMBER_B]}
    assert post_form(organizer, f"/plans/{plan_id}/edit", form | named).status_code == 400
    new = post_form(organizer, f"/plans/new?org_id={tree['district_b'].id}", form)
    assert new.status_code == 403
    # The form's org_id is not where a plan goes: the edit keeps its organisation.
    assert post_form(organizer, f"/plans/{plan_id}/edit", form).status_code == 302
    with app.app_context():
        plans = db.session.scalars(sa.select(StudyPlan)).all()
        assert [(p.title, p.org_id, p.targets) for p in plans] == [("改了的计划", tree["district_a"].id, [])]


def test_beats_stop_counting_once_the_lesson_is_taken_back_but_its_editors_go_on(app, fast_hash):
    from school.courses.models import Lesson
    from school.learning.models import LessonProgress

    _tree, people, _course, lesson, draft = small_world(app)
    with app.app_context():
        for item in (lesson, draft):
            db.session.get(Lesson, item.id).completion = "read"
        db.session.commit()
    member, owner = client_of(app, people[MEMBER_A]), client_of(app, people[OWNER])
    viewing = send_json(member, "POST", f"/api/v1/lessons/{lesson.id}/viewings", {}).get_json()
    beat = member.post(f"/api/v1/viewings/{viewing['session_id']}/beats", json={"seq": 1, "read": 1})
    assert beat.status_code == 200
    with app.app_context():
        db.session.get(Lesson, lesson.id).state = "draft"  # the lecturer takes it back
        db.session.commit()
    beat = member.post(f"/api/v1/viewings/{viewing['session_id']}/beats", json={"seq": 2, "read": 1})
    assert beat.status_code == 403
    with app.app_context():
        progress = db.session.scalar(sa.select(LessonProgress).where(LessonProgress.lesson_id == lesson.id))
        assert progress.read_seconds == 1
    preview = send_json(owner, "POST", f"/api/v1/lessons/{draft.id}/viewings", {}).get_json()
    beat = owner.post(f"/api/v1/viewings/{preview['session_id']}/beats", json={"seq": 1, "read": 1})
    assert beat.status_code == 200


def test_a_quiz_begun_before_the_lesson_was_taken_back_cannot_be_submitted(app, fast_hash):
    from school.courses.models import Lesson
    from school.quizzes import service as quizzes
    from school.quizzes.models import Attempt

    _tree, people, course, lesson, _draft = small_world(app)
    with app.test_request_context():
        quizzes.save_question(course, quizzes.check_question("truefalse", "判断题", [], [True], "解析"))
        quizzes.set_quiz_settings(db.session.get(Lesson, lesson.id), True, 1, 60, 0, "highest")
        db.session.commit()
    member = client_of(app, people[MEMBER_A])
    started = post_form(member, f"/lessons/{lesson.id}/quiz", {})
    assert started.status_code == 302
    attempt_id = int(started.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        db.session.get(Lesson, lesson.id).state = "draft"
        db.session.commit()
    assert member.get(f"/quizzes/attempts/{attempt_id}").status_code == 403  # its questions too
    submitted = post_form(member, f"/quizzes/attempts/{attempt_id}/submit", {"q0": "true"})
    assert submitted.status_code == 403
    with app.app_context():
        assert db.session.get(Attempt, attempt_id).state == "open"
