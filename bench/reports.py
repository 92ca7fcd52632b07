"""学时 compliance report at city scale: the service against one hand-written GROUP BY.

    python bench/reports.py                      # SQLite file in a temp folder, 100,000 members
    python bench/reports.py --members 20000
    python bench/reports.py --database-url postgresql://postgres@127.0.0.1:5432/test --reset

Builds a city → 16 districts → 10 streets each → 13 branches each (2,080 branches, 2,241 orgs, through
orgs.service.create_org so the closure table is the real one), MEMBERS members spread over the
branches (3% deactivated, 2% organizers with the larger quota), and 学时 ledger entries for 85% of
them (a few from last year, so the year filter matters). Then times `reports.service.hours_report`
at the city (the top node) and at one district, best of REPEAT, against one hand-written GROUP BY
over the same rows in the same run, checks that both give the same figures, and prints seconds.
Last line: `ratio: X.XX` = service seconds ÷ hand-written SQL seconds (city + district).
`--reset` drops and recreates the PostgreSQL schema first (a scratch database only).
"""

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("INSTANCE_DIR", tempfile.mkdtemp(prefix="bench-reports-"))

import sqlalchemy as sa  # noqa: E402
from tqdm import tqdm  # noqa: E402

from school import create_app, db  # noqa: E402
from school.accounts.models import RoleGrant, User  # noqa: E402
from school.credits.models import CreditEntry  # noqa: E402
from school.models import load_all  # noqa: E402
from school.orgs import service as orgs  # noqa: E402
from school.orgs.models import Org  # noqa: E402
from school.reports import service  # noqa: E402

DISTRICTS, STREETS, BRANCHES = 16, 10, 13
CHUNK = 10_000
REPEAT = 3
AMOUNTS = (Decimal("0.25"), Decimal("0.5"), Decimal("1"), Decimal("1.5"), Decimal("2"))

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


def insert_chunks(table, rows, desc: str) -> None:
    for start in tqdm(range(0, len(rows), CHUNK), desc=desc, unit="chunk"):
        db.session.execute(sa.insert(table), rows[start : start + CHUNK])
    db.session.commit()


def build(members: int, year: int) -> tuple[int, list[int]]:
    """(city id, district ids) after filling the database."""
    city = orgs.create_org("示范市委", "city")
    districts, branch_ids = [], []
    with tqdm(total=DISTRICTS * STREETS * (BRANCHES + 1) + DISTRICTS, desc="orgs", unit="org") as bar:
        for d in range(DISTRICTS):
            district = orgs.create_org(f"第{d + 1}区委", "district", city)
            districts.append(district.id)
            bar.update()
            for s in range(STREETS):
                street = orgs.create_org(f"区{d + 1}街道{s + 1}", "street", district)
                bar.update()
                for b in range(BRANCHES):
                    branch = orgs.create_org(f"区{d + 1}街道{s + 1}第{b + 1}支部", "branch", street)
                    branch_ids.append(branch.id)
                    bar.update()
        db.session.commit()
    rng = random.Random(6)
    users = [
        {
            "display_name": f"党员{i}",
            "phone": f"139{i:08d}",
            "password_hash": "x",
            "home_org_id": rng.choice(branch_ids),
            "active": rng.random() > 0.03,
            "must_change_password": False,
            "session_version": 1,
            "floating": False,
            "large_text": False,
        }
        for i in range(members)
    ]
    insert_chunks(User.__table__, users, "members")
    homes = db.session.execute(sa.select(User.id, User.home_org_id)).all()
    grants = [{"user_id": uid, "role": "member", "org_id": None} for uid, _ in homes]
    grants += [
        {"user_id": uid, "role": "organizer", "org_id": org} for uid, org in homes if rng.random() < 0.02
    ]
    insert_chunks(RoleGrant.__table__, grants, "roles")
    now = db.utcnow()
    entries = []
    for uid, _ in homes:
        if rng.random() > 0.85:
            continue  # never studied
        # Most study a little; a third are near or past the 32-hour quota.
        for n in range(rng.choice((2, 5, 10, 20, 30, 45))):
            last_year = rng.random() < 0.05
            entries.append(
                {
                    "user_id": uid,
                    "year": year - 1 if last_year else year,
                    "amount": rng.choice(AMOUNTS),
                    "source": "lesson",
                    "ref_key": f"lesson:{n}",
                    "title": "",
                    "reason": "",
                    "created_at": now - timedelta(days=rng.randrange(300), minutes=rng.randrange(1440)),
                }
            )
    insert_chunks(CreditEntry.__table__, entries, f"ledger ({len(entries):,} entries)")
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return city.id, districts


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file in a temp folder)")
    parser.add_argument("--reset", action="store_true", help="drop and recreate the PostgreSQL schema first")
    parser.add_argument("--members", type=int, default=100_000)
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
        year = 2026
        started = time.perf_counter()
        city_id, districts = build(args.members, year)
        print(f"built in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
        admin = User(display_name="管理员", username="bench-admin", password_hash="x")
        admin.grants.append(RoleGrant(role="admin"))
        db.session.add(admin)
        db.session.commit()
        district_id = districts[len(districts) // 2]
        results = {}
        for label, org_id in (("city", city_id), ("district", district_id)):
            service_s, report = best(lambda org_id=org_id: service.hours_report(org_id, year, admin))
            hand_s, expected = best(lambda org_id=org_id: hand(org_id, year))
            assert figures(report) == expected, f"{label}: service and hand-written SQL disagree"
            results[label] = (service_s, hand_s)
            kind = db.session.get(Org, org_id).kind
            print(
                f"{label} roll-up ({kind}, {len(expected)} children, {report.total.members:,} members, "
                f"rate {report.total.rate}%): service {service_s:.3f} s, hand-written SQL {hand_s:.3f} s"
            )
        service_total = sum(s for s, _ in results.values())
        hand_total = sum(h for _, h in results.values())
        print(f"total: service {service_total:.3f} s, hand-written SQL {hand_total:.3f} s")
        print(f"ratio: {service_total / hand_total:.2f}")


if __name__ == "__main__":
    main()
