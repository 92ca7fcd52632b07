"""防瘫预警 at city scale: the nightly evaluation over the generated city, and its heaviest rule
against one hand-written GROUP BY over the same rows in the same run.

    python bench/early_warnings.py                      # SQLite file in a temp folder, 100,000 members
    python bench/early_warnings.py --members 20000
    python bench/early_warnings.py --database-url postgresql://postgres@127.0.0.1:5432/test --reset

Builds the city of bench/reports.py (school/content/generate.py: 2,080 branches, members spread over
them, 3% of branches dormant for 60–240 days, a city-wide plan) and times:
- the first evaluation (every default rule; raises the warnings), then a second one at the same
  moment, which must change nothing (idempotent);
- the "members who stopped studying" rule for branches (`service.findings`) against a hand-written
  SQL query, best of REPEAT; both must name the same branches with the same shares.
Last line: `ratio: X.XX` = service seconds ÷ hand-written SQL seconds for that rule.
`--reset` drops and recreates the PostgreSQL schema first (a scratch database only).
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("INSTANCE_DIR", tempfile.mkdtemp(prefix="bench-warnings-"))

import sqlalchemy as sa  # noqa: E402

from bench.reports import build  # noqa: E402
from school import create_app, db  # noqa: E402
from school.credits.service import local_now  # noqa: E402
from school.models import load_all  # noqa: E402
from school.warnings import service  # noqa: E402
from school.warnings.models import WarningRule  # noqa: E402

REPEAT = 3

# school/learning/activity.py's "studied", spelled out by hand.
HAND_SQL = """
WITH studied AS (
  SELECT user_id FROM viewing_session WHERE beats > 0 AND last_beat_at >= :since
  UNION
  SELECT user_id FROM lesson_progress WHERE time_spent > 0 AND updated_at >= :since
  UNION
  SELECT user_id FROM lesson_progress WHERE completed_at >= :since
  UNION
  SELECT user_id FROM lesson_progress WHERE confirmed_at >= :since
  UNION
  SELECT user_id FROM quiz_attempt WHERE submitted_at >= :since
  UNION
  SELECT e.user_id FROM credit_entry e
  WHERE e.created_at >= :since AND e.amount > 0
    AND e.source IN ('lesson', 'course', 'offline', 'daily_quiz')
    AND e.id NOT IN (SELECT reverses_id FROM credit_entry WHERE reverses_id IS NOT NULL)
)
SELECT c.ancestor_id, COUNT(*) AS members, SUM(CASE WHEN s.user_id IS NULL THEN 1 ELSE 0 END) AS idle
FROM user_account u
JOIN org_closure c ON c.descendant_id = u.home_org_id
JOIN org o ON o.id = c.ancestor_id AND o.kind = :kind AND o.closed_at IS NULL
LEFT JOIN studied s ON s.user_id = u.id
WHERE u.active = :yes AND u.created_at <= :since
GROUP BY c.ancestor_id
"""


def hand(rule: WarningRule, now) -> dict[int, Decimal]:
    """Branches over the limit by the hand-written query: {org id: idle share}."""
    found = {}
    params = {"since": now - timedelta(days=rule.days), "kind": rule.org_kind, "yes": True}
    for org_id, members, idle in db.session.execute(sa.text(HAND_SQL), params):
        share = (Decimal(idle) * 100 / members).quantize(Decimal("0.1"))
        if members >= rule.min_members and share > rule.threshold:
            found[org_id] = share
    return found


def best(fn) -> tuple[float, object]:
    times, answer = [], None
    for _ in range(REPEAT):
        started = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - started)
        db.session.rollback()
    return min(times), answer


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
        build(args.members, args.lessons)
        print(f"built in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))

        now, today = db.utcnow(), local_now().date()
        started = time.perf_counter()
        first = service.evaluate(now, today)
        db.session.commit()
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        second = service.evaluate(now, today)
        db.session.commit()
        second_s = time.perf_counter() - started
        print(f"first evaluation: {first} in {first_s:.2f} s")
        print(f"second evaluation at the same moment: {second} in {second_s:.2f} s")
        if second.raised or second.escalated or second.resolved:
            sys.exit("the second evaluation changed something: not idempotent")

        branch_rule = (WarningRule.kind == "inactive_share", WarningRule.org_kind == "branch")
        rule = db.session.scalar(sa.select(WarningRule).where(*branch_rule))
        service_s, found = best(lambda: service.findings(rule, now, today))
        hand_s, expected = best(lambda: hand(rule, now))
        ours = {f.org_id: f.value for f in found}
        if ours != expected:
            sys.exit(f"service and hand-written SQL disagree: {len(ours)} vs {len(expected)} branches")
        print(
            f"inactive branches: {len(ours)} over the limit; service {service_s:.3f} s, "
            f"hand-written SQL {hand_s:.3f} s"
        )
        print(f"ratio: {service_s / hand_s:.2f}")


if __name__ == "__main__":
    main()
