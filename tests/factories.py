"""Small data builders: each test shows the data it needs."""

import itertools

from school import db
from school.accounts import service as accounts
from school.orgs import service as orgs

_numbers = itertools.count(1)
PASSWORD = "pass-1234"


def make_org(name: str | None = None, kind: str = "branch", parent=None, code: str | None = None):
    org = orgs.create_org(name or f"组织{next(_numbers)}", kind, parent, code=code)
    db.session.commit()
    return org


def make_tree():
    """city → two districts → one street each → two branches each; returns a dict by short name."""
    city = make_org("示范市委", "city")
    tree = {"city": city}
    for d in ("a", "b"):
        district = make_org(f"{d}区委", "district", city)
        street = make_org(f"{d}街道", "street", district)
        tree[f"district_{d}"], tree[f"street_{d}"] = district, street
        for n in (1, 2):
            tree[f"branch_{d}{n}"] = make_org(f"{d}街道第{n}支部", "branch", street)
    return tree


def make_user(
    org=None,
    roles=(("member", None),),
    name: str | None = None,
    phone: str | None = None,
    username: str | None = None,
    password: str = PASSWORD,
    must_change_password: bool = False,
    **fields,
):
    n = next(_numbers)
    if not phone and not username:
        phone = f"139{n:08d}"
    user = accounts.create_user(
        name or f"党员{n}",
        password,
        phone=phone,
        username=username,
        roles=list(roles),
        home_org_id=org.id if org is not None else None,
        must_change_password=must_change_password,
        **fields,
    )
    db.session.commit()
    return user


def make_organizer(org, **kw):
    return make_user(roles=[("organizer", org.id)], **kw)


def make_admin(**kw):
    return make_user(roles=[("admin", None)], **kw)
