"""A generated city for demos and benchmarks: an organisation tree, members, courses, a city-wide
study plan and realistic partial study (progress, completions, 学时 ledger entries, quiz attempts).

Shape: city → DISTRICTS → STREETS each → BRANCHES each (16 × 10 × 13 = 2,080 branches by default,
through orgs.service.create_org so the closure table is the real one). Members, progress and the
ledger are written with bulk inserts. Study is uneven on purpose: each branch has an engagement
level, and a few branches (DORMANT_SHARE) stopped studying months ago, so the 防瘫预警 "no study in
N days" rule has something to find; last-activity times are stored on the progress rows.

Everything generated carries codes starting with CODE ("gen-"); a second run refuses rather than
doubling the city.
"""

import json
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from school import db
from school.accounts.models import RoleGrant, User
from school.accounts.service import hash_password
from school.courses.models import Course, Lesson
from school.credits.models import CreditEntry
from school.errors import Conflict
from school.learning.models import LessonProgress
from school.meetings.models import Meeting
from school.orgs import service as orgs
from school.orgs.models import Org
from school.plans.models import PlanItem, StudyPlan
from school.quizzes.models import Attempt, LessonQuiz, Question

CODE = "gen-"
CITY_CODE = CODE + "city"
PLAN_CODE = CODE + "city-plan"
CHUNK = 10_000
DORMANT_SHARE = 0.03  # branches whose members stopped studying 2–8 months ago
INACTIVE_SHARE = 0.03  # deactivated accounts
ORGANIZER_SHARE = 0.02  # members who are also branch organizers (larger 学时 quota)
COURSE_TITLES = (
    "习近平新时代中国特色社会主义思想专题",
    "党章党规党纪学习",
    "党史学习教育",
    "二十大精神解读",
    "基层党建实务",
    "廉洁自律教育",
    "新时代党员先锋作用",
)
LESSON_SECONDS = (900, 1200, 1800, 2400, 2700)
CREDITS = {
    900: Decimal("0.25"),
    1200: Decimal("0.5"),
    1800: Decimal("1"),
    2400: Decimal("1"),
    2700: Decimal("1"),
}

Tick = Callable[[str, int], None]  # (what, how many done) for a progress bar


@dataclass
class City:
    """Ids of what was generated, for the bench and tests."""

    city_id: int
    district_ids: list[int]
    branch_ids: list[int]
    dormant_branch_ids: list[int]
    course_ids: list[int]
    lesson_ids: list[int]
    plan_id: int
    password: str  # every generated account signs in with it; random per run, shown once
    counts: dict[str, int] = field(default_factory=dict)


def exists() -> bool:
    return db.session.scalar(sa.select(Org.id).where(Org.code == CITY_CODE)) is not None


def _insert(table, rows: list[dict], tick: Tick, what: str) -> None:
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        db.session.execute(sa.insert(table), part)
        tick(what, len(part))


def build_orgs(districts: int, streets: int, branches: int, tick: Tick) -> tuple[Org, list[int], list[int]]:
    city = orgs.create_org("示范市委", "city", code=CITY_CODE)
    district_ids, branch_ids = [], []
    tick("orgs", 1)
    for d in range(1, districts + 1):
        district = orgs.create_org(f"第{d}区委", "district", city, code=f"{CODE}d{d}")
        district_ids.append(district.id)
        tick("orgs", 1)
        for s in range(1, streets + 1):
            street = orgs.create_org(f"{d}区第{s}街道党工委", "street", district, code=f"{CODE}d{d}s{s}")
            tick("orgs", 1)
            for b in range(1, branches + 1):
                branch = orgs.create_org(
                    f"{d}区{s}街道第{b}党支部", "branch", street, code=f"{CODE}d{d}s{s}b{b}"
                )
                branch.position = b
                branch_ids.append(branch.id)
                tick("orgs", 1)
    db.session.flush()
    return city, district_ids, branch_ids


def build_courses(
    lessons: int, now: datetime, rng: random.Random, password_hash: str
) -> tuple[list[Course], list[Lesson]]:
    """Published courses of about ten lessons each, with a lecturer and a quiz on each first lesson."""
    lecturer = User(
        display_name="示范讲师",
        username=CODE + "lecturer",
        password_hash=password_hash,
        must_change_password=False,
    )
    lecturer.grants.append(RoleGrant(role="lecturer"))
    db.session.add(lecturer)
    per_course = 10
    n_courses = max(1, -(-lessons // per_course))
    courses, all_lessons = [], []
    for c in range(n_courses):
        course = Course(
            code=f"{CODE}course{c + 1}",
            title=COURSE_TITLES[c % len(COURSE_TITLES)]
            + (f"（{c // len(COURSE_TITLES) + 1}）" if c >= 7 else ""),
            description="生成的示范课程。",
            owner=lecturer,
            state="published",
            published_at=now - timedelta(days=120),
        )
        db.session.add(course)
        courses.append(course)
        for n in range(min(per_course, lessons - c * per_course)):
            seconds = rng.choice(LESSON_SECONDS)
            lesson = Lesson(
                course=course,
                code=f"{CODE}course{c + 1}-l{n + 1}",
                position=n,
                title=f"第{n + 1}讲",
                body_md="生成的示范课时。",
                credit_hours=CREDITS[seconds],
                state="published",
                completion="watch",
            )
            lesson.generated_seconds = seconds  # not a column: the progress builder reads it
            db.session.add(lesson)
            all_lessons.append(lesson)
    db.session.flush()
    for course in courses:
        first = next(lesson for lesson in all_lessons if lesson.course is course)
        db.session.add(LessonQuiz(lesson_id=first.id, question_count=3, pass_percent=60))
        for q in range(4):
            db.session.add(
                Question(
                    course_id=course.id,
                    lesson_id=first.id,
                    code=f"q{q + 1}",
                    position=q,
                    kind="single",
                    stem=f"{course.title}第{q + 1}题",
                    options_json=json.dumps(["甲", "乙", "丙", "丁"], ensure_ascii=False),
                    answer_json="[0]",
                )
            )
    db.session.flush()
    return courses, all_lessons


def _member_rows(
    members: int, branch_ids: list[int], password_hash: str, rng: random.Random, now
) -> list[dict]:
    rows = []
    for i in range(members):
        retired = rng.random() < 0.3
        rows.append(
            {
                "display_name": f"党员{i + 1:06d}",
                "phone": f"199{i:08d}",
                "password_hash": password_hash,
                "home_org_id": branch_ids[i % len(branch_ids)]
                if i < len(branch_ids)
                else rng.choice(branch_ids),
                "active": rng.random() > INACTIVE_SHARE,
                "must_change_password": False,  # nosec B105 # a flag, not a password
                "session_version": 1,
                "member_status": "probationary" if rng.random() < 0.06 else "full",
                "employment": "retired" if retired else "working",
                "floating": rng.random() < 0.04,
                "large_text": retired and rng.random() < 0.3,
                "created_at": now - timedelta(days=400),
            }
        )
    return rows


def _year(moment: datetime) -> int:
    # Local (UTC+8) calendar year of a naive UTC time: close enough for generated data.
    return (moment + timedelta(hours=8)).year


def build_city(
    members: int = 100_000,
    lessons: int = 50,
    districts: int = 16,
    streets: int = 10,
    branches: int = 13,
    seed: int = 6,
    now: datetime | None = None,
    tick: Tick | None = None,
) -> City:
    """Generate the whole city in the current database; Conflict when it is already there.

    Commits as it goes (bulk inserts in chunks)."""
    if exists():
        raise Conflict(
            "a generated city is already in this database (org code gen-city); nothing was changed"
        )
    tick = tick or (lambda _what, _n: None)
    rng = random.Random(seed)  # nosec B311 # reproducible demo data, not security
    now = now or db.utcnow()
    password = secrets.token_urlsafe(9)
    password_hash = hash_password(password)
    city, district_ids, branch_ids = build_orgs(districts, streets, branches, tick)
    courses, all_lessons = build_courses(lessons, now, rng, password_hash)
    plan_lessons = [lesson for lesson in all_lessons if lesson.course in courses[:2]]
    plan = StudyPlan(
        code=PLAN_CODE,
        org_id=city.id,
        title="全市党员年度集中学习计划",
        description="生成的示范学习计划。",
        starts_on=(now - timedelta(days=75)).date(),
        due_on=(now + timedelta(days=30)).date(),
        required_hours=Decimal("8"),
        items=[PlanItem(course_id=c.id) for c in courses[:2]],
    )
    db.session.add(plan)
    organizer_hash = password_hash
    chiefs = [("city", city.id)] + [(f"d{n + 1}", d) for n, d in enumerate(district_ids)]
    for name, org_id in chiefs:
        chief = User(
            display_name=f"组织员{name}",
            username=f"{CODE}organizer-{name}",
            password_hash=organizer_hash,
            must_change_password=False,
            home_org_id=org_id,
        )
        chief.grants.append(RoleGrant(role="organizer", org_id=org_id))
        db.session.add(chief)
    db.session.commit()
    _insert(User.__table__, _member_rows(members, branch_ids, organizer_hash, rng, now), tick, "members")
    db.session.commit()
    people = db.session.execute(
        sa.select(User.id, User.home_org_id, User.active)
        .where(User.home_org_id.in_(orgs.subtree_ids(city.id)), User.username.is_(None))
        .order_by(User.id)
    ).all()
    grants = [{"user_id": uid, "role": "member", "org_id": None} for uid, _, _ in people]
    grants += [
        {"user_id": uid, "role": "organizer", "org_id": org}
        for uid, org, _ in people
        if rng.random() < ORGANIZER_SHARE
    ]
    _insert(RoleGrant.__table__, grants, tick, "roles")
    db.session.commit()
    dormant = set(rng.sample(branch_ids, max(1, int(len(branch_ids) * DORMANT_SHARE))))
    engagement = {b: rng.betavariate(2.5, 1.5) for b in branch_ids}
    progress, ledger, attempts = _study(
        people, all_lessons, plan_lessons, dormant, engagement, rng, now, tick
    )
    _insert(LessonProgress.__table__, progress, tick, "progress")
    db.session.commit()
    _insert(CreditEntry.__table__, ledger, tick, "ledger")
    db.session.commit()
    _insert(Attempt.__table__, attempts, tick, "attempts")
    db.session.commit()
    meetings = _meetings(branch_ids, dormant, rng, now)
    _insert(Meeting.__table__, meetings, tick, "meetings")
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return City(
        city.id,
        district_ids,
        branch_ids,
        sorted(dormant),
        [c.id for c in courses],
        [lesson.id for lesson in all_lessons],
        plan.id,
        password,
        {
            "orgs": 1 + len(district_ids) * (1 + streets * (1 + branches)),
            "members": len(people),
            "lessons": len(all_lessons),
            "progress": len(progress),
            "ledger": len(ledger),
            "attempts": len(attempts),
            "meetings": len(meetings),
        },
    )


def _meetings(branch_ids: list[int], dormant: set[int], rng: random.Random, now: datetime) -> list[dict]:
    """Party lessons (党课) held last quarter and, most of them, this quarter too; none in dormant
    branches, so the "no offline lesson" warning fires where study has stopped, not everywhere."""
    today = now.date()
    this_quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last_quarter = (this_quarter - timedelta(days=80)).replace(day=1)
    rows = []
    for branch_id in branch_ids:
        if branch_id in dormant:
            continue
        days = [last_quarter + timedelta(days=rng.randrange(80))]
        if rng.random() < 0.9 and today > this_quarter:
            days.append(this_quarter + timedelta(days=rng.randrange((today - this_quarter).days)))
        for held_on in days:
            rows.append(
                {
                    "org_id": branch_id,
                    "kind": "lecture",
                    "held_on": held_on,
                    "topic": "专题党课：学习贯彻党的二十大精神",
                    "lecturer": "支部书记",
                    "hours": Decimal("1"),
                }
            )
    return rows


def _study(people, all_lessons, plan_lessons, dormant, engagement, rng, now, tick):
    """Progress rows, ledger entries and quiz attempts for every member (lists of dicts)."""
    quiz_lessons = {lesson.id for lesson in all_lessons if lesson.position == 0}
    others = [lesson for lesson in all_lessons if lesson not in plan_lessons]
    progress, ledger, attempts = [], [], []
    for n, (uid, branch, active) in enumerate(people):
        if n % 5000 == 4999:
            tick("study", 5000)
        level = engagement[branch] * (0.4 if not active else 1.0)
        if rng.random() > 0.15 + 0.8 * level:
            continue  # never studied
        if branch in dormant:
            last = now - timedelta(days=rng.randrange(60, 240), minutes=rng.randrange(1440))
        else:
            last = now - timedelta(days=min(int(rng.expovariate(1 / 12)), 200), minutes=rng.randrange(1440))
        # Plan lessons in order: a completed prefix, then one in progress; a few other lessons.
        started = max(1, round(len(plan_lessons) * min(1.0, rng.random() * 1.6 * level + 0.05)))
        chosen = plan_lessons[:started] + rng.sample(others, min(len(others), rng.choice((0, 0, 1, 2, 4))))
        moment = last - timedelta(days=len(chosen) * rng.uniform(0.5, 3))
        for i, lesson in enumerate(chosen):
            seconds = lesson.generated_seconds
            moment = min(last, moment + timedelta(days=rng.uniform(0.3, 3), minutes=rng.randrange(600)))
            when = last if i == len(chosen) - 1 else moment
            finished = i < len(chosen) - 1 or rng.random() < 0.5
            covered = float(seconds) if finished else float(rng.randrange(0, int(seconds * 0.85)))
            opened = when - timedelta(minutes=rng.randrange(20, 240))
            progress.append(
                {
                    "user_id": uid,
                    "lesson_id": lesson.id,
                    "watched_json": json.dumps([[0, covered]]),
                    "covered_seconds": covered,
                    "duration": float(seconds),
                    "time_spent": covered * rng.uniform(1.0, 1.3),
                    "position": covered if not finished else 0.0,
                    "read_seconds": 0.0,
                    "first_opened_at": opened,
                    "updated_at": when,
                    "completed_at": when if finished else None,
                }
            )
            if finished:
                ledger.append(
                    {
                        "user_id": uid,
                        "year": _year(when),
                        "amount": lesson.credit_hours,
                        "source": "lesson",
                        "ref_key": f"lesson:{lesson.id}",
                        "title": f"{lesson.course.title} · {lesson.title}",
                        "reason": "",
                        "created_at": when,
                    }
                )
            if finished and lesson.id in quiz_lessons:
                attempts.append(_attempt(uid, lesson, when, rng))
    return progress, ledger, attempts


def _attempt(uid: int, lesson: Lesson, when: datetime, rng: random.Random) -> dict:
    """A passed lesson-quiz attempt (completion needed it) over 3 of the lesson's 4 questions;
    question 1 is the hard one."""
    numbers = rng.sample(range(1, 5), 3)
    results = [rng.random() > (0.45 if q == 1 else 0.12) for q in numbers]
    if sum(results) < 2:
        results = [True, True, results[2]]
    items = [
        {
            "qid": None,
            "kind": "single",
            "stem": f"{lesson.course.title}第{q}题",
            "options": ["甲", "乙", "丙", "丁"],
            "order": [0, 1, 2, 3],
            "answer": [0],
            "explanation": "",
        }
        for q in numbers
    ]
    score = sum(results)
    return {
        "user_id": uid,
        "kind": "lesson",
        "lesson_id": lesson.id,
        "state": "submitted",
        "items_json": json.dumps(items, ensure_ascii=False),
        "answers_json": json.dumps([[0] if r else [1] for r in results]),
        "results_json": json.dumps(results),
        "pass_percent": 60,  # nosec B105 # a pass mark, not a password
        "score": score,
        "percent": round(100 * score / 3),
        "passed": True,
        "started_at": when - timedelta(minutes=5),
        "submitted_at": when,
    }
