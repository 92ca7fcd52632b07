"""Organisation tree operations and the one subtree scope every list, page and API goes through."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from school import db
from school.accounts.models import User
from school.audit import service as audit
from school.errors import Forbidden, Invalid, NotFound
from school.orgs.models import KINDS, Org, OrgClosure, OrgEvent


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


@dataclass(frozen=True)
class MemberFilter:
    """Narrowing of the member list beyond org and text; None means "any"."""

    category: str | None = None  # one of MEMBER_CATEGORIES
    state: str | None = None  # "active" | "deactivated"
    idle_days: int | None = None  # no study activity in this many days


MEMBER_CATEGORIES = ("full", "probationary", "working", "retired", "floating")
MEMBER_STATES = ("active", "deactivated")
IDLE_DAYS = (30, 90)


def members_stmt(
    viewer: User,
    org_id: int | None = None,
    text: str = "",
    filters: MemberFilter | None = None,
    now: datetime | None = None,
) -> sa.Select:
    """Members of the viewer's subtree, optionally under one org, matching name/phone text and
    the filters (category, active or not, no study in N days before now)."""
    stmt = sa.select(User).where(User.home_org_id.is_not(None))
    stmt = scope(stmt, viewer, User.home_org_id)
    if org_id is not None:
        stmt = stmt.where(User.home_org_id.in_(subtree_ids(org_id)))
    filters = filters or MemberFilter()
    if filters.category is not None:
        from school.plans.service import category_condition

        if filters.category not in MEMBER_CATEGORIES:
            raise Invalid(_("Unknown member category."))
        stmt = stmt.where(category_condition(filters.category))
    if filters.state == "active":
        stmt = stmt.where(User.active.is_(True))
    elif filters.state == "deactivated":
        stmt = stmt.where(User.active.is_(False))
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
    if filters.idle_days is not None:
        from school.learning import activity

        cutoff = (now or db.utcnow()) - timedelta(days=filters.idle_days)
        # Only the listed members' study is looked at, not the whole city's.
        candidates = stmt.with_only_columns(User.id)
        studied = activity.studied_user_ids(cutoff, members=candidates).subquery("studied")
        stmt = stmt.where(~sa.exists().where(studied.c.user_id == User.id))
    return stmt.order_by(User.display_name, User.id)


# --- editing the tree ---------------------------------------------------------------------------

# Level of each kind: a node's children sit at a deeper level (a branch may hang straight under a
# district, but never a district under a street). Branches are leaves: members belong to them.
KIND_LEVEL = {"city": 0, "district": 1, "street": 2, "park": 2, "branch": 3}
NAME_MAX = 120


def strictly_inside(user: User, org_id: int) -> bool:
    """Whether org_id lies below (never at) one of the user's organizer roots; admins: anywhere.

    Organizers change what is below their root, not the root itself (that is their own grant).
    """
    if user.has_role("admin"):
        return True
    roots = user.organizer_org_ids
    if not roots:
        return False
    stmt = sa.select(OrgClosure.descendant_id).where(
        OrgClosure.ancestor_id.in_(roots), OrgClosure.descendant_id == org_id, OrgClosure.distance > 0
    )
    return db.session.scalar(stmt.limit(1)) is not None


def record_event(org: Org, action: str, by: User | None, at: datetime | None = None, **details) -> OrgEvent:
    """Append one history row for org."""
    event = OrgEvent(
        org_id=org.id,
        action=action,
        details=json.dumps(details, ensure_ascii=False),
        by_user_id=by.id if by is not None else None,
        at=at or db.utcnow(),
    )
    db.session.add(event)
    audit.record(audit.ORG_EVENTS[action], org_id=org.id, target=org, details=details, actor=by)
    return event


def org_events(org: Org, limit: int = 50) -> list[OrgEvent]:
    """The latest history rows of org, newest first."""
    stmt = (
        sa.select(OrgEvent).where(OrgEvent.org_id == org.id).order_by(OrgEvent.at.desc(), OrgEvent.id.desc())
    )
    return list(db.session.scalars(stmt.limit(limit)))


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise Invalid(_("An organisation needs a name of at most 120 characters."))
    return name


def _check_sibling_name(parent_id: int | None, name: str, except_id: int | None = None) -> None:
    # Imports find branches by name: two same-named siblings would make a row ambiguous.
    stmt = sa.select(Org.id).where(Org.parent_id == parent_id, Org.name == name)
    if except_id is not None:
        stmt = stmt.where(Org.id != except_id)
    if db.session.scalar(stmt.limit(1)) is not None:
        raise Invalid(_("There is already an organisation named %(name)s here.", name=name))


def _check_may_hold(parent: Org, kind: str) -> None:
    if parent.closed_at is not None:
        raise Invalid(_("%(name)s is closed; nothing can be added under it.", name=parent.name))
    if parent.is_branch:
        raise Invalid(_("A branch cannot have organisations under it."))
    if KIND_LEVEL[kind] <= KIND_LEVEL[parent.kind]:
        raise Invalid(_("This kind of organisation cannot be placed under %(name)s.", name=parent.name))


def add_child(by: User, parent: Org, name: str, kind: str, now: datetime | None = None) -> Org:
    """A new org under parent (which must be in by's scope and open), with its history row."""
    if not in_scope(by, parent.id):
        raise Forbidden()
    name = _clean_name(name)
    if kind not in KINDS:
        raise Invalid(_("Unknown kind of organisation."))
    _check_may_hold(parent, kind)
    _check_sibling_name(parent.id, name)
    org = create_org(name, kind, parent)
    record_event(org, "created", by, now, parent=parent.name)
    return org


def rename_org(by: User, org: Org, name: str, now: datetime | None = None) -> bool:
    """Rename an org strictly inside by's scope; False when the name is unchanged."""
    if not strictly_inside(by, org.id):
        raise Forbidden()
    name = _clean_name(name)
    if name == org.name:
        return False
    _check_sibling_name(org.parent_id, name, except_id=org.id)
    record_event(org, "renamed", by, now, old=org.name, new=name)
    org.name = name
    return True


def relocate_org(by: User, org: Org, new_parent: Org, now: datetime | None = None) -> None:
    """Move org (strictly inside by's scope) with its subtree under new_parent (inside by's scope).

    Never into itself or below itself; the closure table is rewritten by move_org.
    """
    if not strictly_inside(by, org.id) or not in_scope(by, new_parent.id):
        raise Forbidden()
    if db.session.scalar(
        sa.select(OrgClosure.descendant_id).where(
            OrgClosure.ancestor_id == org.id, OrgClosure.descendant_id == new_parent.id
        )
    ):
        raise Invalid(_("An organisation cannot be moved into its own subtree."))
    if new_parent.id == org.parent_id:
        raise Invalid(_("%(name)s is already there.", name=org.name))
    _check_may_hold(new_parent, org.kind)
    _check_sibling_name(new_parent.id, org.name)
    old_parent = org.parent
    record_event(
        org,
        "moved",
        by,
        now,
        old=old_parent.name if old_parent else "",
        old_id=old_parent.id if old_parent else None,
        new=new_parent.name,
        new_id=new_parent.id,
    )
    db.session.flush()
    move_org(org, new_parent)


def close_org(by: User, org: Org, now: datetime) -> None:
    """Close an org strictly inside by's scope, once nothing active is left in it."""
    if not strictly_inside(by, org.id):
        raise Forbidden()
    if org.closed_at is not None:
        raise Invalid(_("%(name)s is already closed.", name=org.name))
    active = member_count(org)
    if active:
        raise Invalid(
            _(
                "%(name)s still has %(n)d active members. Transfer them to another branch first.",
                name=org.name,
                n=active,
            )
        )
    open_below = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Org)
        .where(Org.id.in_(subtree_ids(org.id)), Org.id != org.id, Org.closed_at.is_(None))
    )
    if open_below:
        raise Invalid(_("Close the organisations under %(name)s first.", name=org.name))
    org.closed_at = now
    record_event(org, "closed", by, now)


def reopen_org(by: User, org: Org, now: datetime | None = None) -> None:
    """Reopen a closed org strictly inside by's scope (its parent must be open)."""
    if not strictly_inside(by, org.id):
        raise Forbidden()
    if org.closed_at is None:
        raise Invalid(_("%(name)s is not closed.", name=org.name))
    if org.parent is not None and org.parent.closed_at is not None:
        raise Invalid(_("Reopen %(name)s first.", name=org.parent.name))
    org.closed_at = None
    record_event(org, "reopened", by, now)


@dataclass
class OrgOption:
    id: int
    label: str
    kind: str


def org_options(
    user: User,
    branches_only: bool = False,
    include_closed: bool = False,
    leave_out: int | None = None,
    below_level: int | None = None,
) -> list[OrgOption]:
    """Orgs the user administers for a picker, in tree order (open ones only unless asked).

    `leave_out` drops an org and its whole subtree (move targets); `below_level` keeps only orgs
    whose kind sits above that level and may hold children. Branch-only lists are labelled
    "parent · branch", the others are indented by depth.
    """
    stmt = scope(
        sa.select(Org.id, Org.parent_id, Org.name, Org.kind, Org.position, Org.closed_at), user, Org.id
    )
    rows = {r.id: r for r in db.session.execute(stmt)}
    children: dict[int | None, list] = {}
    for r in rows.values():
        children.setdefault(r.parent_id if r.parent_id in rows else None, []).append(r)
    options: list[OrgOption] = []

    def walk(parent_id: int | None, level: int) -> None:
        for r in sorted(children.get(parent_id, []), key=lambda r: (r.position, r.name, r.id)):
            if r.id == leave_out or (r.closed_at is not None and not include_closed):
                continue  # a closed org's subtree is closed too
            keep = True
            if branches_only:
                keep = r.kind == "branch"
            elif below_level is not None:
                keep = r.kind != "branch" and KIND_LEVEL[r.kind] < below_level
            if keep:
                if branches_only:
                    parent = rows.get(r.parent_id)
                    label = f"{parent.name} · {r.name}" if parent else r.name
                else:
                    label = "\u3000" * level + r.name
                options.append(OrgOption(r.id, label, r.kind))
            walk(r.id, level + 1)

    walk(None, 0)
    return options
