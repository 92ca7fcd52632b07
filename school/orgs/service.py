"""Organisation tree operations and the one subtree scope every list, page and API goes through."""

import sqlalchemy as sa
from flask_babel import gettext as _

from school import db
from school.accounts.models import User
from school.errors import Invalid, NotFound
from school.orgs.models import KINDS, Org, OrgClosure


def get_org(org_id: int) -> Org:
    """The org with this id, or NotFound."""
    org = db.session.get(Org, org_id)
    if org is None:
        raise NotFound()
    return org


def create_org(name: str, kind: str, parent: Org | None = None, code: str | None = None) -> Org:
    """Add an org under parent (or a root) and its closure rows."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid(_("An organisation needs a name of at most 120 characters."))
    if kind not in KINDS:
        raise Invalid(_("Unknown kind of organisation."))
    org = Org(name=name, kind=kind, code=code, parent=parent, depth=parent.depth + 1 if parent else 0)
    db.session.add(org)
    db.session.flush()
    db.session.add(OrgClosure(ancestor_id=org.id, descendant_id=org.id, distance=0))
    if parent is not None:
        db.session.execute(
            sa.insert(OrgClosure).from_select(
                ["ancestor_id", "descendant_id", "distance"],
                sa.select(OrgClosure.ancestor_id, sa.literal(org.id), OrgClosure.distance + 1).where(
                    OrgClosure.descendant_id == parent.id
                ),
            )
        )
    return org


def move_org(org: Org, new_parent: Org) -> None:
    """Move org and its whole subtree under new_parent (closure rows rewritten set-wise)."""
    if db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OrgClosure)
        .where(OrgClosure.ancestor_id == org.id, OrgClosure.descendant_id == new_parent.id)
    ):
        raise Invalid(_("An organisation cannot be moved into its own subtree."))
    subtree = sa.select(OrgClosure.descendant_id).where(OrgClosure.ancestor_id == org.id)
    old_ancestors = sa.select(OrgClosure.ancestor_id).where(
        OrgClosure.descendant_id == org.id, OrgClosure.ancestor_id != org.id
    )
    db.session.execute(
        sa.delete(OrgClosure).where(
            OrgClosure.descendant_id.in_(subtree), OrgClosure.ancestor_id.in_(old_ancestors)
        )
    )
    above = sa.select(OrgClosure).where(OrgClosure.descendant_id == new_parent.id).subquery()
    below = sa.select(OrgClosure).where(OrgClosure.ancestor_id == org.id).subquery()
    db.session.execute(
        sa.insert(OrgClosure).from_select(
            ["ancestor_id", "descendant_id", "distance"],
            sa.select(
                above.c.ancestor_id, below.c.descendant_id, above.c.distance + below.c.distance + 1
            ).select_from(above.join(below, sa.true())),
        )
    )
    shift = new_parent.depth + 1 - org.depth
    db.session.execute(
        sa.update(Org).where(Org.id.in_(subtree)).values(depth=Org.depth + shift),
        execution_options={"synchronize_session": False},
    )
    org.parent_id = new_parent.id
    db.session.flush()
    db.session.expire_all()


def subtree_ids(org_id: int) -> sa.Select:
    """SELECT of the ids of org_id and everything below it."""
    return sa.select(OrgClosure.descendant_id).where(OrgClosure.ancestor_id == org_id)


def ancestors(org: Org) -> list[Org]:
    """Orgs from the root down to org (inclusive), for breadcrumbs."""
    stmt = (
        sa.select(Org)
        .join(OrgClosure, OrgClosure.ancestor_id == Org.id)
        .where(OrgClosure.descendant_id == org.id)
        .order_by(OrgClosure.distance.desc())
    )
    return list(db.session.scalars(stmt))


def visible_org_ids(user: User) -> sa.Select | None:
    """SELECT of the org ids a user may administer, or None when they may see all (admin)."""
    if user.has_role("admin"):
        return None
    return sa.select(OrgClosure.descendant_id).where(
        OrgClosure.ancestor_id.in_(user.organizer_org_ids or [-1])
    )


def scope(stmt: sa.Select, user: User, org_column) -> sa.Select:
    """Restrict a query to rows whose org_column lies inside the user's organizer subtree(s).

    The one place that decides organizer visibility: pages, API, exports and paging all call it.
    """
    ids = visible_org_ids(user)
    return stmt if ids is None else stmt.where(org_column.in_(ids))


def in_scope(user: User, org_id: int | None) -> bool:
    """Whether org_id lies in the user's organizer subtree (admins: everywhere)."""
    if org_id is None:
        return user.has_role("admin")
    stmt = scope(sa.select(Org.id).where(Org.id == org_id), user, Org.id)
    return db.session.scalar(stmt) is not None


def top_orgs(user: User) -> list[Org]:
    """The roots of what the user administers: the tree roots for admins, else their grants."""
    if user.has_role("admin"):
        stmt = sa.select(Org).where(Org.parent_id.is_(None))
    else:
        stmt = sa.select(Org).where(Org.id.in_(user.organizer_org_ids or [-1]))
    return list(db.session.scalars(stmt.order_by(Org.position, Org.id)))


def children_with_counts(org: Org) -> list[tuple[Org, int]]:
    """Direct children of org, each with the number of active members in its whole subtree."""
    below = (
        sa.select(OrgClosure.ancestor_id.label("child_id"), sa.func.count(User.id).label("n"))
        .join(User, User.home_org_id == OrgClosure.descendant_id)
        .join(Org, Org.id == OrgClosure.ancestor_id)
        .where(Org.parent_id == org.id, User.active.is_(True))
        .group_by(OrgClosure.ancestor_id)
        .subquery()
    )
    stmt = (
        sa.select(Org, sa.func.coalesce(below.c.n, 0))
        .outerjoin(below, below.c.child_id == Org.id)
        .where(Org.parent_id == org.id)
        .order_by(Org.position, Org.id)
    )
    return [(child, count) for child, count in db.session.execute(stmt)]


def member_count(org: Org) -> int:
    """Active members in org's whole subtree."""
    stmt = sa.select(sa.func.count(User.id)).where(
        User.home_org_id.in_(subtree_ids(org.id)), User.active.is_(True)
    )
    return db.session.scalar(stmt) or 0


def members_stmt(viewer: User, org_id: int | None = None, text: str = "") -> sa.Select:
    """Members of the viewer's subtree, optionally under one org and matching name/phone text."""
    stmt = sa.select(User).where(User.home_org_id.is_not(None))
    stmt = scope(stmt, viewer, User.home_org_id)
    if org_id is not None:
        stmt = stmt.where(User.home_org_id.in_(subtree_ids(org_id)))
    text = (text or "").strip()[:64]
    if text:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            sa.or_(
                User.display_name.like(like, escape="\\"),
                User.phone.like(like, escape="\\"),
                User.username.like(like, escape="\\"),
            )
        )
    return stmt.order_by(User.display_name, User.id)
