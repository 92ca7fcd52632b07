"""Who may do what, in one place.

Every view declares an access rule with one of the decorators below; `enforce()` runs before every
request and refuses what the rule does not allow. A view without a rule is refused outright (and
tests/test_access_rules.py fails), so no route can forget one. Object-level questions ("may this
organizer see this member?") are the `may_*` functions, which views and services ask.
"""

from collections.abc import Callable

import sqlalchemy as sa
from flask import current_app, request
from flask_login import current_user

from school.errors import Forbidden, Unauthorized

PUBLIC = "public"  # anyone, signed in or not
SIGNED_IN = "signed_in"  # any signed-in user
RULES = (PUBLIC, SIGNED_IN, "member", "lecturer", "organizer", "admin")


def _rule(name: str) -> Callable:
    def decorate(view: Callable) -> Callable:
        view.access_rule = name
        return view

    return decorate


public = _rule(PUBLIC)
signed_in = _rule(SIGNED_IN)
member = _rule("member")
lecturer = _rule("lecturer")
organizer = _rule("organizer")
admin = _rule("admin")

# Endpoints that Flask or extensions add, with their rule.
BUILTIN_RULES = {"static": PUBLIC}


def rule_for(endpoint: str | None) -> str | None:
    """The declared access rule of an endpoint, or None when it has none."""
    if endpoint is None:
        return None
    if endpoint in BUILTIN_RULES:
        return BUILTIN_RULES[endpoint]
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "access_rule", None)


def has_role(user, role: str) -> bool:
    """Role check where admin holds every role."""
    return user.is_authenticated and (user.has_role(role) or user.has_role("admin"))


def enforce() -> None:
    """before_request: refuse a request its endpoint's rule does not allow."""
    if request.endpoint is None:
        return  # no route matched: Flask answers 404/405 itself
    rule = rule_for(request.endpoint)
    if rule is None:
        raise Forbidden()  # fail closed: a route without a rule is nobody's
    if rule == PUBLIC:
        return
    if not current_user.is_authenticated:
        raise Unauthorized()
    if rule != SIGNED_IN and not has_role(current_user, rule):
        raise Forbidden()


def may_administer_org(user, org_id: int | None) -> bool:
    """Organizers within their subtree, and admins, may administer an org."""
    from school.orgs.service import in_scope

    return user.is_authenticated and in_scope(user, org_id)


def org_param(raw) -> int | None:
    """An organisation id from `?org_id=` or a form, or None when not given.

    Refused (403) when it is not an id inside my subtree: a malformed id is answered as an
    unknown one, so ids outside my scope are never confirmed.
    """
    if raw in (None, ""):
        return None
    text = str(raw)
    if not text.isdigit() or len(text) > 12:
        raise Forbidden()
    org_id = int(text)
    require(may_administer_org(current_user, org_id))
    return org_id


def may_edit_org(user, org_id: int) -> bool:
    """Admins may change any org; organizers only orgs strictly below their own root(s)."""
    from school.orgs.service import strictly_inside

    return user.is_authenticated and strictly_inside(user, org_id)


def may_view_member(user, member) -> bool:
    """A user sees themself; organizers see members of their subtree; admins everyone."""
    if not user.is_authenticated:
        return False
    return user.id == member.id or may_administer_org(user, member.home_org_id)


def may_edit_course(user, course) -> bool:
    """The owner and co-lecturers (while they are lecturers), and admins, may change a course."""
    if not user.is_authenticated:
        return False
    if user.has_role("admin"):
        return True
    return user.has_role("lecturer") and (course.owner_id == user.id or user.id in course.co_lecturer_ids)


def may_view_course(user, course) -> bool:
    """Published courses are open to every signed-in user, plan-only ones to the members a plan
    names them to and to organizers (who assign them); drafts only to their editors."""
    if course.state == "published" and user.is_authenticated:
        if course.audience == "all" or has_role(user, "organizer") or may_edit_course(user, course):
            return True
        from school.plans.service import assigned_course_ids

        return course.id in assigned_course_ids(user)
    return may_edit_course(user, course)


def may_view_lesson(user, lesson) -> bool:
    """A lesson (and its media) is visible when published in a course the user may see, or to editors."""
    if may_edit_course(user, lesson.course):
        return True
    return lesson.state == "published" and may_view_course(user, lesson.course)


def hidden_course_ids(user) -> set[int]:
    """Published plan-only courses this user may not see (all of them for nobody signed in): what
    lists, search and the daily quiz leave out."""
    from school import db
    from school.courses.models import Course, CourseLecturer

    if user is not None and has_role(user, "organizer"):
        return set()
    stmt = sa.select(Course.id).where(Course.audience == "plan", Course.state == "published")
    hidden = set(db.session.scalars(stmt))
    if hidden and user is not None and user.is_authenticated:
        from school.plans.service import assigned_course_ids

        hidden -= assigned_course_ids(user)
        if user.has_role("lecturer"):
            co = sa.select(CourseLecturer.course_id).where(CourseLecturer.user_id == user.id)
            mine = stmt.where(sa.or_(Course.owner_id == user.id, Course.id.in_(co)))
            hidden -= set(db.session.scalars(mine))
    return hidden


def require(allowed: bool) -> None:
    """Raise Forbidden unless allowed."""
    if not allowed:
        raise Forbidden()
