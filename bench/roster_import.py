"""Member import at its promised scale: 5,000 rows, dry run + apply, within 30 s.

Builds a district with 40 branches and 1,000 existing members in a temporary SQLite database,
writes a 5,000-row XLSX (1,000 of its rows change existing members, 4,000 are new), then times
the dry run (read + plan) and the apply (re-read, re-plan, write, commit) through the service
code, then a second dry run of the same file (all rows unchanged). Usage:
python bench/roster_import.py [DATABASE_URL]
Last line: `seconds: X` = dry run + apply.
"""

import io
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("INSTANCE_DIR", tempfile.mkdtemp(prefix="bench-roster-"))

import openpyxl  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from school import create_app, db  # noqa: E402
from school.accounts.models import RoleGrant, User  # noqa: E402
from school.models import load_all  # noqa: E402
from school.orgs import service as orgs  # noqa: E402
from school.roster import importer, service  # noqa: E402

ROWS, EXISTING, BRANCHES = 5000, 1000, 40


def build():
    city = orgs.create_org("市委", "city")
    district = orgs.create_org("区委", "district", city)
    street = orgs.create_org("街道", "street", district)
    branches = [orgs.create_org(f"第{b}支部", "branch", street, code=f"B{b:03d}") for b in range(BRANCHES)]
    organizer = User(
        display_name="组织员", phone="13700000000", password_hash="x", must_change_password=False
    )
    organizer.grants = [RoleGrant(role="organizer", org_id=district.id)]
    db.session.add(organizer)
    db.session.flush()
    db.session.execute(
        sa.insert(User),
        [
            {
                "display_name": f"党员{i}",
                "phone": f"139{i:08d}",
                "password_hash": "x",
                "home_org_id": branches[0].id,
            }
            for i in range(EXISTING)
        ],
    )
    db.session.commit()
    return organizer, district, branches


def workbook(branches) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(list(importer.HEADERS))
    for i in range(ROWS):
        branch = branches[i % BRANCHES]
        status = "预备党员" if i % 3 else "正式党员"
        branch_key = branch.code if i % 2 else branch.name
        sheet.append([f"党员{i}", f"139{i:08d}", branch_key, status, "在职", "否"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{os.environ['INSTANCE_DIR']}/bench.db"
    load_all()
    app = create_app({"DATABASE_URL": url})
    with app.app_context():
        db.Base.metadata.drop_all(db.engine)
        db.Base.metadata.create_all(db.engine)
        organizer, district, branches = build()
        data = workbook(branches)
        print(f"file: {len(data) / 1024:.0f} KiB, {ROWS} rows")

        start = time.perf_counter()
        plan = service.make_plan(organizer, district, data, "bench.xlsx", app.config)
        dry = time.perf_counter() - start
        print(f"dry run: {dry:.2f} s {plan.counts}")

        start = time.perf_counter()
        plan = service.make_plan(organizer, district, data, "bench.xlsx", app.config)
        summary = service.apply_plan(plan, skip_rejected=False)
        db.session.commit()
        applied = time.perf_counter() - start
        print(f"apply: {applied:.2f} s {summary}")

        db.session.expire_all()
        start = time.perf_counter()
        again = service.make_plan(organizer, district, data, "bench.xlsx", app.config)
        print(f"second dry run: {time.perf_counter() - start:.2f} s {again.counts}")
        assert again.counts["unchanged"] == ROWS, again.counts
        print(f"seconds: {dry + applied:.2f}")


if __name__ == "__main__":
    main()
