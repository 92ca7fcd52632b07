"""Organizers manage members one by one: list filters, add, edit, deactivate, reset a password."""

from datetime import timedelta

import sqlalchemy as sa

from school import db
from school.accounts.models import User
from school.credits.models import CreditEntry
from school.learning.models import LessonProgress
from school.orgs.models import Org
from tests.conftest import csrf_from, sign_in
from tests.factories import make_admin, make_lesson, make_org, make_organizer, make_tree, make_user

ORGANIZER = "13800000001"


def organizer_of(client, org, phone=ORGANIZER):
    make_organizer(org, phone=phone)
    sign_in(client, phone)
    return client


def post(client, url, data=None, page="/members"):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def organizer_living_in(org, home):
    """An organizer of org whose own home branch is home (so they appear among members)."""
    return make_user(home, roles=[("member", None), ("organizer", org.id)])


def user(user_id: int) -> User:
    db.session.expire_all()
    return db.session.get(User, user_id)


def by_phone(phone: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.phone == phone))


def count_users() -> int:
    return db.session.scalar(sa.select(sa.func.count(User.id)))


def listed(client, query: str) -> set[int]:
    """Ids of the members a filtered /members page links to (every page of it)."""
    import re

    found, page = set(), 1
    while True:
        response = client.get(f"/members?{query}&page={page}")
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        found |= {int(n) for n in re.findall(r'href="/members/(\d+)"', html)}
        if f"page={page + 1}" not in html:
            return found
        page += 1


# The list and its filters


def test_members_are_filtered_by_category(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    full = make_user(tree["branch_a1"], member_status="full", employment="working")
    probationary = make_user(tree["branch_a1"], member_status="probationary", employment="retired")
    floating = make_user(tree["branch_a2"], member_status="full", floating=True)
    make_user(tree["branch_b1"], member_status="full")  # another district
    assert listed(client, "category=full") == {full.id, floating.id}
    assert listed(client, "category=probationary") == {probationary.id}
    assert listed(client, "category=retired") == {probationary.id}
    assert listed(client, "category=floating") == {floating.id}


def test_members_are_filtered_by_branch_and_state(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    a1 = make_user(tree["branch_a1"])
    gone = make_user(tree["branch_a1"], active=False)
    a2 = make_user(tree["branch_a2"])
    assert listed(client, f"org_id={tree['branch_a1'].id}") == {a1.id, gone.id}
    assert listed(client, f"org_id={tree['branch_a1'].id}&state=active") == {a1.id}
    assert listed(client, "state=deactivated") == {gone.id}
    assert a2.id in listed(client, "state=active")


def test_members_without_study_in_30_or_90_days_are_found(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    lesson = make_lesson()
    now = db.utcnow()
    recent = make_user(tree["branch_a1"], name="近期学习")
    month_ago = make_user(tree["branch_a1"], name="六十天前")
    long_ago = make_user(tree["branch_a1"], name="很久以前")
    never = make_user(tree["branch_a1"], name="从未学习")
    quiz_only = make_user(tree["branch_a1"], name="只做每日一测")

    def played(user, days_ago):
        return LessonProgress(
            user_id=user.id, lesson_id=lesson.id, updated_at=now - timedelta(days=days_ago), time_spent=60
        )

    db.session.add_all(
        [
            played(recent, 2),
            played(month_ago, 60),
            played(long_ago, 200),
            CreditEntry(
                user_id=quiz_only.id,
                year=now.year,
                amount=1,
                source="daily_quiz",
                ref_key="daily:x",
                created_at=now,
            ),
            # a manual adjustment is not study
            CreditEntry(
                user_id=never.id, year=now.year, amount=1, source="manual", ref_key="manual:x", created_at=now
            ),
        ]
    )
    db.session.commit()
    members = {recent.id, month_ago.id, long_ago.id, never.id, quiz_only.id}
    assert listed(client, "idle=30") & members == {month_ago.id, long_ago.id, never.id}
    assert listed(client, "idle=90") & members == {long_ago.id, never.id}


def test_paging_keeps_the_filters(app, client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    per_page = app.config["PER_PAGE"]
    full = {make_user(tree["branch_a1"], member_status="full").id for _ in range(per_page + 2)}
    make_user(tree["branch_a1"], member_status="probationary")
    html = client.get("/members?category=full&state=active").get_data(as_text=True)
    assert "category=full" in html and "page=2" in html and "state=active" in html
    assert listed(client, "category=full&state=active") == full


def test_unknown_filter_values_are_refused_with_a_message(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    for query in ("category=vip", "state=gone", "idle=7", "idle=abc"):
        response = client.get(f"/members?{query}")
        assert response.status_code == 400
        assert "请" in response.get_data(as_text=True) or "未知" in response.get_data(as_text=True)


# Adding


def test_organizer_adds_a_member_to_a_branch_of_their_subtree(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    response = post(
        client,
        "/members/new",
        {
            "name": " 王五 ",
            "phone": "138 0013 8000",
            "org_id": tree["branch_a2"].id,
            "member_status": "probationary",
            "employment": "retired",
            "floating": "y",
        },
    )
    assert response.status_code == 302
    member = by_phone("13800138000")
    assert member.display_name == "王五" and member.home_org_id == tree["branch_a2"].id
    assert (member.member_status, member.employment, member.floating) == ("probationary", "retired", True)
    assert member.roles == {"member"} and member.must_change_password
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "王五" in html and "预备" in html and "a街道第2支部" in html


def test_adding_with_a_phone_already_used_changes_nothing(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    make_user(tree["branch_b1"], phone="13800138000")
    before = count_users()
    response = post(
        client, "/members/new", {"name": "重复", "phone": "13800138000", "org_id": tree["branch_a1"].id}
    )
    assert response.status_code == 400
    assert "已被其他账号使用" in response.get_data(as_text=True) or "13800138000" in response.get_data(
        as_text=True
    )
    assert count_users() == before


def test_adding_to_a_branch_outside_my_subtree_is_refused(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    before = count_users()
    response = post(
        client, "/members/new", {"name": "越权", "phone": "13800138000", "org_id": tree["branch_b1"].id}
    )
    assert response.status_code == 403
    assert count_users() == before and by_phone("13800138000") is None


def test_adding_to_a_closed_branch_or_a_street_is_refused(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    db.session.execute(sa.update(Org).where(Org.id == tree["branch_a2"].id).values(closed_at=db.utcnow()))
    db.session.commit()
    before = count_users()
    for org in (tree["branch_a2"], tree["street_a"]):
        response = post(client, "/members/new", {"name": "张三", "phone": "13800138000", "org_id": org.id})
        assert response.status_code == 400
    assert count_users() == before


def test_empty_or_overlong_names_and_bad_phones_are_refused(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    before = count_users()
    for name, phone in (("", "13800138000"), ("长" * 65, "13800138000"), ("张三", "12345"), ("张三", "")):
        response = post(
            client, "/members/new", {"name": name, "phone": phone, "org_id": tree["branch_a1"].id}
        )
        assert response.status_code == 400
    response = post(client, "/members/new", {"name": "张三", "phone": "13800138000", "org_id": "abc"})
    assert response.status_code == 400 and "请选择支部" in response.get_data(as_text=True)
    assert count_users() == before


def test_a_name_with_markup_is_shown_as_text(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    name = "<script>alert(1)</script>"
    post(client, "/members/new", {"name": name, "phone": "13800138000", "org_id": tree["branch_a1"].id})
    member = by_phone("13800138000")
    assert member.display_name == name
    for url in (f"/members/{member.id}", "/members", f"/members/{member.id}/edit"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


# Editing


def test_organizer_edits_a_member(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    member = make_user(tree["branch_a1"], name="旧名", member_status="probationary")
    response = post(
        client,
        f"/members/{member.id}/edit",
        {"name": "新名", "phone": "13800138001", "member_status": "full", "employment": "working"},
    )
    assert response.status_code == 302
    changed = user(member.id)
    assert (changed.display_name, changed.phone, changed.member_status) == ("新名", "13800138001", "full")
    assert changed.employment == "working" and not changed.floating
    assert changed.home_org_id == tree["branch_a1"].id


def test_editing_to_a_phone_already_used_changes_nothing(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    member = make_user(tree["branch_a1"], name="甲", phone="13800138001")
    make_user(tree["branch_a2"], phone="13800138002")
    response = post(client, f"/members/{member.id}/edit", {"name": "改了", "phone": "13800138002"})
    assert response.status_code == 400
    same = user(member.id)
    assert (same.display_name, same.phone) == ("甲", "13800138001")


def test_a_member_of_another_district_cannot_be_reached_by_id(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    other = make_user(tree["branch_b1"], name="乙", phone="13800138009")
    version, password = other.session_version, other.password_hash
    assert client.get(f"/members/{other.id}").status_code == 404
    assert client.get(f"/members/{other.id}/edit").status_code == 404
    assert client.get(f"/members/{other.id}/transfer").status_code == 404
    for url, data in (
        (f"/members/{other.id}/edit", {"name": "改", "phone": "13800138009"}),
        (f"/members/{other.id}/deactivate", {}),
        (f"/members/{other.id}/reset-password", {}),
        (f"/members/{other.id}/transfer", {"org_id": tree["branch_a1"].id}),
    ):
        assert post(client, url, data).status_code == 404
    same = user(other.id)
    assert (same.display_name, same.active, same.home_org_id) == ("乙", True, tree["branch_b1"].id)
    assert (same.session_version, same.password_hash) == (version, password)
    assert client.get("/members/999999").status_code == 404


def test_members_cannot_manage_members(client):
    tree = make_tree()
    make_user(tree["branch_a1"], phone="13800000002")
    other = make_user(tree["branch_a1"])
    sign_in(client, "13800000002")
    assert client.get(f"/members/{other.id}").status_code == 403
    assert post(client, f"/members/{other.id}/deactivate", page="/").status_code == 403
    assert user(other.id).active


# Deactivating


def test_deactivating_signs_the_member_out_on_their_next_request(app, client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    member = make_user(tree["branch_a1"], phone="13800138000")
    phone = app.test_client()
    sign_in(phone, "13800138000")
    assert phone.get("/").status_code == 200
    assert post(client, f"/members/{member.id}/deactivate").status_code == 302
    assert not user(member.id).active
    assert phone.get("/").status_code == 302  # back to the sign-in page
    assert sign_in(app.test_client(), "13800138000").status_code != 302
    assert post(client, f"/members/{member.id}/reactivate").status_code == 302
    assert user(member.id).active
    assert sign_in(app.test_client(), "13800138000").status_code == 302


def test_organizer_cannot_deactivate_themself_a_peer_or_an_admin(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    me = by_phone(ORGANIZER)
    me.home_org_id = tree["branch_a1"].id
    peer = organizer_living_in(tree["district_a"], tree["branch_a2"])
    admin = make_admin(org=tree["branch_a1"])
    db.session.commit()
    for target in (me, peer, admin):
        assert post(client, f"/members/{target.id}/deactivate").status_code == 403
        assert user(target.id).active


# Password reset


def test_organizer_resets_a_password_shown_once_and_the_member_must_change_it(app, client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    member = make_user(tree["branch_a1"], phone="13800138000")
    old_device = app.test_client()
    sign_in(old_device, "13800138000")
    response = post(client, f"/members/{member.id}/reset-password")
    assert response.status_code == 200
    import re

    password = re.search(r'id="temp-password">([a-z0-9]+)<', response.get_data(as_text=True)).group(1)
    assert len(password) >= 10
    assert password not in client.get(f"/members/{member.id}").get_data(as_text=True)
    changed = user(member.id)
    assert changed.must_change_password and changed.session_version == member.session_version + 1
    assert old_device.get("/").status_code == 302
    fresh = app.test_client()
    assert sign_in(fresh, "13800138000", password).status_code == 302
    assert fresh.get("/").headers["Location"].endswith("/me/password")


def test_organizer_cannot_reset_an_admin_or_an_organizer_above_them(client):
    tree = make_tree()
    organizer_of(client, tree["street_a"])
    above = organizer_living_in(tree["district_a"], tree["branch_a1"])
    admin = make_admin(org=tree["branch_a1"])
    below = organizer_living_in(tree["branch_a2"], tree["branch_a2"])
    for target in (above, admin):
        hashed = target.password_hash
        assert post(client, f"/members/{target.id}/reset-password").status_code == 403
        assert user(target.id).password_hash == hashed
    assert post(client, f"/members/{below.id}/reset-password").status_code == 200


# The member page


def test_member_page_shows_details_trail_and_this_years_hours(app, client):
    from school.credits import service as credits

    tree = make_tree()
    organizer_of(client, tree["district_a"])
    member = make_user(tree["branch_a1"], name="李四", member_status="full", floating=True)
    with app.app_context():
        credits.credit_once(member.id, "2.5", "lesson", "lesson:1", "党课")
        db.session.commit()
    html = client.get(f"/members/{member.id}").get_data(as_text=True)
    assert "李四" in html and "a区委" in html and "a街道第1支部" in html
    assert "正式党员" in html and "流动党员" in html
    assert "2.5" in html and "重置密码" in html and "转到其他支部" in html
    list_html = client.get("/members").get_data(as_text=True)
    assert f'href="/members/{member.id}"' in list_html


def test_admin_manages_members_anywhere(client):
    tree = make_tree()
    make_admin(phone="13800000009")
    sign_in(client, "13800000009")
    member = make_user(tree["branch_b2"], name="丙")
    assert client.get(f"/members/{member.id}").status_code == 200
    assert (
        post(client, f"/members/{member.id}/edit", {"name": "丁", "phone": member.phone}).status_code == 302
    )
    assert user(member.id).display_name == "丁"
    org = make_org("独立支部", "branch")
    assert (
        post(client, "/members/new", {"name": "戊", "phone": "13800138007", "org_id": org.id}).status_code
        == 302
    )
