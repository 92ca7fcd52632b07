"""Organiser reports at city scale: each service against one hand-written GROUP BY.

    python bench/reports.py                      # SQLite file in a temp folder, 100,000 members
    python bench/reports.py --members 20000
    python bench/reports.py --database-url postgresql://postgres@127.0.0.1:5432/test --reset

Fills the database with the generated city of `flask content generate-city` (school/content/
generate.py, the one builder): city → 16 districts → 10 streets each → 13 branches each (2,080
branches), MEMBERS members (3% deactivated, 2% organizers), 50 lessons, a city-wide plan of 20 of
them, and uneven study (progress rows, completions, 学时 ledger, quiz attempts). Then times, best of
REPEAT, at the city (the top node) and at one district, against one hand-written GROUP BY over the
same rows in the same run, checking that both give the same figures:
  - the 学时 roll-up (`reports.service.hours_report`),
  - the plan completion roll-up (`reports.plans.plan_report`).
Last line: `ratio: X.XX` = plan service seconds ÷ hand-written SQL seconds (city + district).
`--reset` drops and recreates the PostgreSQL schema first (a scratch database only).
"""

import argparse
import os
import sys
import tempfile
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("INSTANCE_DIR", tempfile.mkdtemp(prefix="bench-reports-"))

import sqlalchemy as sa  # noqa: E402
from tqdm import tqdm  # noqa: E402

from school import create_app, db  # noqa: E402
from school.accounts.models import RoleGrant, User  # noqa: E402
from school.content import generate  # noqa: E402
from school.credits.service import local_now, study_year  # noqa: E402
from school.models import load_all  # noqa: E402
from school.orgs.models import Org  # noqa: E402
from school.plans.models import StudyPlan  # noqa: E402
from school.reports import plans, service  # noqa: E402

REPEAT = 3

HAND_SQL = """
WITH ledger AS (
  SELECT user_id, ROUND(SUM(amount), 2) AS hours, MAX(created_at) AS last_at
  FROM credit_entry WHERE year = :year GROUP BY user_id
), organizers AS (
  SELECT DISTINCT user_id FROM role_grant WHERE role = 'organizer'
)
SELECT c.ancestor_id,
       COUNT(*) AS members,
       SUM(CASE WHEN COALESCE(l.hours, 0) >=
                     CASE WHEN g.user_id IS NULL THEN :quota ELSE :organizer_quota END
           THEN 1 ELSE 0 END) AS reached,
       SUM(CASE WHEN COALESCE(l.hours, 0) <= 0 THEN 1 ELSE 0 END) AS idle,
       COALESCE(SUM(l.hours), 0) AS hours
FROM user_account u
JOIN org_closure c ON c.descendant_id = u.home_org_id
JOIN org o ON o.id = c.ancestor_id AND o.parent_id = :node
LEFT JOIN ledger l ON l.user_id = u.id
LEFT JOIN organizers g ON g.user_id = u.id
WHERE u.active = :active
GROUP BY c.ancestor_id
"""


PLAN_SQL = """
WITH progress AS (
  SELECT user_id, COUNT(completed_at) AS done,
         SUM(CASE WHEN completed_at IS NOT NULL THEN 1.0 WHEN duration <= 0 THEN 0.0
                  WHEN covered_seconds >= duration THEN 1.0 ELSE covered_seconds / duration END) AS coverage
  FROM lesson_progress WHERE lesson_id IN :lessons GROUP BY user_id
), ledger AS (
  SELECT user_id, SUM(amount) AS hours FROM credit_entry
  WHERE created_at >= :begin AND created_at < :end GROUP BY user_id
)
SELECT c.ancestor_id,
       COUNT(*) AS assigned,
       SUM(CASE WHEN p.done >= :n THEN 1 ELSE 0 END) AS completed,
       COUNT(p.user_id) AS started,
       COALESCE(SUM(p.coverage), 0) AS coverage,
       COALESCE(SUM(l.hours), 0) AS hours,
       SUM(CASE WHEN COALESCE(l.hours, 0) >= :required THEN 1 ELSE 0 END) AS hours_reached
FROM user_account u
JOIN org_closure c ON c.descendant_id = u.home_org_id
JOIN org o ON o.id = c.ancestor_id AND o.parent_id = :node
LEFT JOIN progress p ON p.user_id = u.id
LEFT JOIN ledger l ON l.user_id = u.id
WHERE u.active = :active
  AND u.home_org_id IN (SELECT descendant_id FROM org_closure WHERE ancestor_id = :plan_org)
GROUP BY c.ancestor_id
"""


def build(members: int, lessons: int) -> generate.City:
    """Fill the database with the generated city (school/content/generate.py), with progress bars."""
    bars: dict[str, tqdm] = {}

    def tick(what: str, n: int) -> None:
        if what not in bars:
            for bar in bars.values():
                bar.close()
            bars.clear()
            bars[what] = tqdm(desc=what, unit="row")
        bars[what].update(n)

    city = generate.build_city(members, lessons, tick=tick)
    for bar in bars.values():
        bar.close()
    print(", ".join(f"{n:,} {what}" for what, n in city.counts.items()))
    return city


def best(fn) -> tuple[float, object]:
    times, answer = [], None
    for _ in range(REPEAT):
        db.session.expire_all()
        start = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - start)
    return min(times), answer


def hand(org_id: int, year: int) -> dict:
    quota, organizer_quota = (int(q) for q in service.quotas())
    params = {
        "year": year,
        "node": org_id,
        "quota": quota,
        "organizer_quota": organizer_quota,
        "active": True,
    }
    return {
        row[0]: (row[1], row[2], row[3], Decimal(str(row[4])).quantize(service.CENT))
        for row in db.session.execute(sa.text(HAND_SQL), params)
    }


def figures(report: service.HoursReport) -> dict:
    return {r.org_id: (r.members, r.reached, r.idle, r.hours) for r in report.children if not r.direct}


def plan_hand(plan: StudyPlan, org_id: int, lesson_ids: list[int]) -> dict:
    begin, end = plans.plan_window(plan)
    stmt = sa.text(PLAN_SQL).bindparams(sa.bindparam("lessons", expanding=True))
    params = {
        "lessons": lesson_ids,
        "begin": begin,
        "end": end,
        "n": len(lesson_ids),
        "required": float(plan.required_hours),
        "node": org_id,
        "plan_org": plan.org_id,
        "active": True,
    }
    return {
        row[0]: (row[1], row[2], row[3], round(float(row[4]) / len(lesson_ids), 6), _cents(row[5]), row[6])
        for row in db.session.execute(stmt, params)
    }


def _cents(value) -> Decimal:
    return Decimal(str(value)).quantize(service.CENT)


def plan_figures(report: plans.PlanReport) -> dict:
    return {
        r.org_id: (r.assigned, r.completed, r.started, round(r.coverage, 6), r.hours, r.hours_reached)
        for r in report.children
        if not r.direct
    }


def compare(label: str, run_service, run_hand, describe) -> tuple[float, float]:
    service_s, report = best(run_service)
    hand_s, expected = best(run_hand)
    assert describe(report) == expected, f"{label}: service and hand-written SQL disagree"
    return service_s, hand_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file in a temp folder)")
    parser.add_argument("--reset", action="store_true", help="drop and recreate the PostgreSQL schema first")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--lessons", type=int, default=50)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{os.environ['INSTANCE_DIR']}/bench.db"
    load_all()
    app = create_app({"DATABASE_URL": url})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            if not args.reset:
                sys.exit("refusing to fill a PostgreSQL database without --reset (a scratch database only)")
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        else:
            db.Base.metadata.drop_all(db.engine)
        db.Base.metadata.create_all(db.engine)
        started = time.perf_counter()
        city = build(args.members, args.lessons)
        print(f"built in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))  # as a site's nightly maintenance would have
        admin = User(display_name="管理员", username="bench-admin", password_hash="x")
        admin.grants.append(RoleGrant(role="admin"))
        db.session.add(admin)
        db.session.commit()
        year = study_year()
        today = local_now().date()
        district_id = city.district_ids[len(city.district_ids) // 2]
        nodes = (("city", city.city_id), ("district", district_id))
        hours_results = {}
        for label, org_id in nodes:
            hours_results[label] = compare(
                f"hours {label}",
                lambda org_id=org_id: service.hours_report(org_id, year, admin),
                lambda org_id=org_id: hand(org_id, year),
                figures,
            )
            kind = db.session.get(Org, org_id).kind
            service_s, hand_s = hours_results[label]
            print(
                f"学时 {label} roll-up ({kind}): service {service_s:.3f} s, hand-written SQL {hand_s:.3f} s"
            )
        plan = db.session.get(StudyPlan, city.plan_id)
        lesson_ids = plans.plan_lesson_ids(plan)
        plan_results = {}
        for label, org_id in nodes:
            plan_results[label] = compare(
                f"plan {label}",
                lambda org_id=org_id: plans.plan_report(plan, org_id, admin, today),
                lambda org_id=org_id: plan_hand(plan, org_id, lesson_ids),
                plan_figures,
            )
            report = plans.plan_report(plan, org_id, admin, today)
            service_s, hand_s = plan_results[label]
            print(
                f"plan {label} roll-up ({len(report.children)} children, {report.total.assigned:,} members, "
                f"{len(lesson_ids)} lessons, rate {report.total.rate}%): "
                f"service {service_s:.3f} s, hand-written SQL {hand_s:.3f} s"
            )
        for name, results in (("学时", hours_results), ("plan", plan_results)):
            service_total = sum(s for s, _ in results.values())
            hand_total = sum(h for _, h in results.values())
            print(f"{name} total: service {service_total:.3f} s, hand-written SQL {hand_total:.3f} s")
        hours_ratio = sum(s for s, _ in hours_results.values()) / sum(h for _, h in hours_results.values())
        print(f"学时 ratio: {hours_ratio:.2f}")
        plan_ratio = sum(s for s, _ in plan_results.values()) / sum(h for _, h in plan_results.values())
        print(f"ratio: {plan_ratio:.2f}")


if __name__ == "__main__":
    main()
