"""Subtree queries at city scale: the closure table against a recursive CTE over parent_id.

Builds a tree of 10,421 orgs (city → 20 districts → 20 streets each → 25 branches each) with
50,000 members through the real service code, then times "active members under a district" and
"ids under a street" both ways in the same run. Usage: python bench/subtree.py [DATABASE_URL]
Last line: `ratio: X` = closure-table time ÷ recursive-CTE time (lower is better).
"""

import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("INSTANCE_DIR", tempfile.mkdtemp(prefix="bench-subtree-"))

import sqlalchemy as sa  # noqa: E402
from tqdm import tqdm  # noqa: E402

from school import create_app, db  # noqa: E402
from school.accounts.models import User  # noqa: E402
from school.models import load_all  # noqa: E402
from school.orgs import service  # noqa: E402
from school.orgs.models import Org  # noqa: E402


def build() -> list[Org]:
    city = service.create_org("市委", "city")
    districts = []
    with tqdm(total=10420, desc="orgs", unit="org") as bar:
        for d in range(20):
            district = service.create_org(f"区{d}", "district", city)
            districts.append(district)
            bar.update()
            for s in range(20):
                street = service.create_org(f"街道{d}-{s}", "street", district)
                bar.update()
                for b in range(25):
                    service.create_org(f"支部{d}-{s}-{b}", "branch", street)
                    bar.update()
            db.session.commit()
    branch_ids = db.session.scalars(sa.select(Org.id).where(Org.kind == "branch")).all()
    rng = random.Random(1)
    rows = [
        {
            "display_name": f"党员{i}",
            "phone": f"139{i:08d}",
            "password_hash": "x",
            "home_org_id": rng.choice(branch_ids),
            "active": True,
            "must_change_password": False,
            "session_version": 1,
            "floating": False,
            "large_text": False,
        }
        for i in range(50_000)
    ]
    db.session.execute(sa.insert(User), rows)
    db.session.commit()
    return districts


def cte_ids(org_id: int) -> sa.Select:
    tree = sa.select(Org.id).where(Org.id == org_id).cte("tree", recursive=True)
    tree = tree.union_all(sa.select(Org.id).join(tree, Org.parent_id == tree.c.id))
    return sa.select(tree.c.id)


def timed(make_ids, org_ids: list[int], repeat: int) -> tuple[float, list[int]]:
    answers = []
    start = time.perf_counter()
    for _ in range(repeat):
        for org_id in org_ids:
            stmt = sa.select(sa.func.count(User.id)).where(
                User.home_org_id.in_(make_ids(org_id)), User.active.is_(True)
            )
            answers.append(db.session.scalar(stmt))
    return (time.perf_counter() - start) / (repeat * len(org_ids)), answers


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{os.environ['INSTANCE_DIR']}/bench.db"
    load_all()
    app = create_app({"DATABASE_URL": url})
    with app.app_context():
        db.Base.metadata.drop_all(db.engine)
        db.Base.metadata.create_all(db.engine)
        started = time.perf_counter()
        districts = build()
        print(
            f"built 10,421 orgs + 50,000 members in {time.perf_counter() - started:.1f} s",
            f"({url.split(':')[0]})",
        )
        district_ids = [d.id for d in districts]
        street_ids = db.session.scalars(sa.select(Org.id).where(Org.kind == "street").limit(50)).all()
        timed(service.subtree_ids, district_ids, 1)  # warm caches
        closure_d, a = timed(service.subtree_ids, district_ids, 5)
        cte_d, b = timed(cte_ids, district_ids, 5)
        assert a == b, "closure table and CTE disagree"
        closure_s, _ = timed(service.subtree_ids, street_ids, 5)
        cte_s, _ = timed(cte_ids, street_ids, 5)
        print(
            f"members under a district (~2,500): closure {closure_d * 1000:.2f} ms, CTE {cte_d * 1000:.2f} ms"
        )
        print(
            f"members under a street (~125):     closure {closure_s * 1000:.2f} ms, CTE {cte_s * 1000:.2f} ms"
        )
        print(f"ratio: {(closure_d + closure_s) / (cte_d + cte_s):.2f}")


if __name__ == "__main__":
    main()
