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


def make_lesson(
    owner=None, duration: float | None = 60.0, completion: str = "watch", credit="1.5", state="published"
):
    """A published lesson in a published course; with `duration`, a ready video of that length
    (the rows only: tests that need real files make them with ffmpeg)."""
    from decimal import Decimal

    from school.courses.models import Course, Lesson
    from school.media.models import MediaAsset

    owner = owner or make_user(roles=[("lecturer", None)])
    course = Course(title=f"课程{next(_numbers)}", owner_id=owner.id, state="published")
    lesson = Lesson(
        course=course,
        title=f"第{next(_numbers)}课",
        completion=completion,
        credit_hours=Decimal(credit),
        state=state,
    )
    db.session.add_all([course, lesson])
    db.session.flush()
    if duration is not None:
        asset = MediaAsset(
            lesson_id=lesson.id, state="ready", kind="video", duration=duration, has_video=True
        )
        db.session.add(asset)
        db.session.flush()
        lesson.media_id = asset.id
    db.session.commit()
    return lesson
