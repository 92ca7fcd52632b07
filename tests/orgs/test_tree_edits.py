"""Organizers and admins change the organisation tree: add, rename, move, close, reopen."""

import sqlalchemy as sa

from school import db
from school.orgs import service
from school.orgs.models import Org, OrgClosure, OrgEvent
from tests.conftest import csrf_from, sign_in
from tests.factories import make_admin, make_org, make_organizer, make_tree, make_user

ORGANIZER = "13800000001"


def organizer_of(client, org, phone=ORGANIZER):
    make_organizer(org, phone=phone)
    sign_in(client, phone)
    return client


def post(client, url, data=None, page="/members"):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def fresh(org) -> Org:
    db.session.expire_all()
    return db.session.get(Org, org.id)


def closure() -> set[tuple[int, int, int]]:
    db.session.expire_all()
    return set(
        db.session.execute(sa.select(OrgClosure.ancestor_id, OrgClosure.descendant_id, OrgClosure.distance))
    )


def expected_closure() -> set[tuple[int, int, int]]:
    """The closure rebuilt from parent_id alone: what the table must hold."""
    parents = dict(db.session.execute(sa.select(Org.id, Org.parent_id)).all())
    rows = set()
    for org_id in parents:
        node, distance = org_id, 0
        while node is not None:
            rows.add((node, org_id, distance))
            node, distance = parents[node], distance + 1
    return rows


def events(org) -> list[str]:
    return list(
        db.session.scalars(sa.select(OrgEvent.action).where(OrgEvent.org_id == org.id).order_by(OrgEvent.id))
    )


def org_named(name: str) -> Org | None:
    return db.session.scalar(sa.select(Org).where(Org.name == name))


# Adding


def test_organizer_adds_a_branch_under_a_street_of_their_subtree(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    street = tree["street_a"]
    response = post(client, f"/orgs/{street.id}/new", {"name": "新建第3支部", "kind": "branch"})
    assert response.status_code == 302
    branch = org_named("新建第3支部")
    assert branch.parent_id == street.id and branch.depth == street.depth + 1 and branch.kind == "branch"
    assert branch.id in set(db.session.scalars(service.subtree_ids(tree["district_a"].id)))
    assert closure() == expected_closure()
    assert events(branch) == ["created"]
    page = client.get(f"/orgs/{branch.id}").get_data(as_text=True)
    assert "变更记录" in page and "在a街道下设立" in page


def test_organizer_may_add_under_their_own_root(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    response = post(client, f"/orgs/{tree['district_a'].id}/new", {"name": "机关支部", "kind": "branch"})
    assert response.status_code == 302
    assert org_named("机关支部").parent_id == tree["district_a"].id


def test_adding_under_an_org_of_another_district_is_refused(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    response = post(client, f"/orgs/{tree['street_b'].id}/new", {"name": "越权支部", "kind": "branch"})
    assert response.status_code == 403
    assert org_named("越权支部") is None


def test_empty_and_overlong_names_are_refused_and_nothing_is_added(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    count = db.session.scalar(sa.select(sa.func.count(Org.id)))
    for name in ("", "   ", "长" * 121):
        response = post(client, f"/orgs/{tree['street_a'].id}/new", {"name": name, "kind": "branch"})
        assert response.status_code == 400
        assert "名称" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Org.id))) == count


def test_a_name_with_markup_is_shown_as_text(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    post(client, f"/orgs/{tree['street_a'].id}/new", {"name": "<script>alert(1)</script>", "kind": "branch"})
    branch = org_named("<script>alert(1)</script>")
    assert branch is not None
    for url in (f"/orgs/{branch.id}", f"/orgs/{tree['street_a'].id}", "/members"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_nothing_can_be_added_under_a_branch_or_a_closed_org(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    response = post(client, f"/orgs/{tree['branch_a1'].id}/new", {"name": "小组", "kind": "branch"})
    assert response.status_code == 400 and "支部下不能" in response.get_data(as_text=True)
    tree["branch_a2"].closed_at = db.utcnow()
    street = make_org("空街道", "street", tree["district_a"])
    street.closed_at = db.utcnow()
    db.session.commit()
    response = post(client, f"/orgs/{street.id}/new", {"name": "小组", "kind": "branch"})
    assert response.status_code == 400 and "已关闭" in response.get_data(as_text=True)
    assert org_named("小组") is None


def test_a_district_cannot_be_put_under_a_street(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    response = post(client, f"/orgs/{tree['street_a'].id}/new", {"name": "假区委", "kind": "district"})
    assert response.status_code == 400
    assert org_named("假区委") is None


def test_two_siblings_cannot_share_a_name(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    response = post(client, f"/orgs/{tree['street_a'].id}/new", {"name": "a街道第1支部", "kind": "branch"})
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).where(Org.name == "a街道第1支部")) == 1


# Renaming


def test_organizer_renames_a_branch_and_the_history_keeps_both_names(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    branch = tree["branch_a1"]
    assert post(client, f"/orgs/{branch.id}/rename", {"name": "第一党支部"}).status_code == 302
    assert fresh(branch).name == "第一党支部"
    html = client.get(f"/orgs/{branch.id}").get_data(as_text=True)
    assert "a街道第1支部" in html and "第一党支部" in html
    assert events(branch) == ["renamed"]


def test_organizer_cannot_rename_move_or_close_their_own_root(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    root = tree["district_a"]
    assert post(client, f"/orgs/{root.id}/rename", {"name": "改名"}).status_code == 403
    assert post(client, f"/orgs/{root.id}/move", {"parent_id": tree["district_b"].id}).status_code == 403
    assert post(client, f"/orgs/{root.id}/close").status_code == 403
    assert client.get(f"/orgs/{root.id}/rename").status_code == 403
    root = fresh(root)
    assert root.name == "a区委" and root.parent_id == tree["city"].id and root.closed_at is None
    assert events(root) == []


def test_admin_may_rename_any_org(client):
    tree = make_tree()
    make_admin(phone="13800000009")
    sign_in(client, "13800000009")
    assert post(client, f"/orgs/{tree['district_a'].id}/rename", {"name": "甲区委"}).status_code == 302
    assert fresh(tree["district_a"]).name == "甲区委"


def test_renaming_to_nothing_is_refused(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    response = post(client, f"/orgs/{tree['branch_a1'].id}/rename", {"name": "  "})
    assert response.status_code == 400
    assert fresh(tree["branch_a1"]).name == "a街道第1支部"
    assert events(tree["branch_a1"]) == []


# Moving


def test_organizer_moves_a_branch_to_another_street_and_the_closure_stays_exact(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    new_street = make_org("新街道", "street", tree["district_a"])
    member = make_user(tree["branch_a1"])
    response = post(client, f"/orgs/{tree['branch_a1'].id}/move", {"parent_id": new_street.id})
    assert response.status_code == 302
    assert fresh(tree["branch_a1"]).parent_id == new_street.id
    assert closure() == expected_closure()
    assert tree["branch_a1"].id in set(db.session.scalars(service.subtree_ids(new_street.id)))
    assert tree["branch_a1"].id not in set(db.session.scalars(service.subtree_ids(tree["street_a"].id)))
    assert service.member_count(fresh(new_street)) == 1 and member.id
    html = client.get(f"/orgs/{tree['branch_a1'].id}").get_data(as_text=True)
    assert "a街道" in html and "新街道" in html
    assert events(tree["branch_a1"]) == ["moved"]


def test_admin_moves_a_street_with_its_branches_to_another_district(client):
    tree = make_tree()
    make_admin(phone="13800000009")
    sign_in(client, "13800000009")
    response = post(client, f"/orgs/{tree['street_a'].id}/move", {"parent_id": tree["district_b"].id})
    assert response.status_code == 302
    assert closure() == expected_closure()
    assert fresh(tree["branch_a2"]).depth == 3
    assert tree["branch_a2"].id in set(db.session.scalars(service.subtree_ids(tree["district_b"].id)))


def test_moving_an_org_into_its_own_descendant_is_refused_and_changes_nothing(client):
    tree = make_tree()
    make_admin(phone="13800000009")
    sign_in(client, "13800000009")
    before = closure()
    response = post(client, f"/orgs/{tree['district_a'].id}/move", {"parent_id": tree["street_a"].id})
    assert response.status_code == 400
    assert "自身" in response.get_data(as_text=True) or "下级" in response.get_data(as_text=True)
    assert closure() == before
    response = post(client, f"/orgs/{tree['street_a'].id}/move", {"parent_id": tree["street_a"].id})
    assert response.status_code == 400
    assert closure() == before and events(tree["street_a"]) == []


def test_moving_outside_my_subtree_is_refused_either_way(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    before = closure()
    # my branch to another district's street (id typed into the form)
    response = post(client, f"/orgs/{tree['branch_a1'].id}/move", {"parent_id": tree["street_b"].id})
    assert response.status_code == 403
    # another district's branch into my street
    response = post(client, f"/orgs/{tree['branch_b1'].id}/move", {"parent_id": tree["street_a"].id})
    assert response.status_code == 403
    assert client.get(f"/orgs/{tree['branch_b1'].id}/move").status_code == 403
    assert closure() == before


def test_move_form_offers_only_places_inside_my_subtree_and_not_below_itself(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    other = make_org("另一街道", "street", tree["district_a"])
    html = client.get(f"/orgs/{tree['street_a'].id}/move").get_data(as_text=True)
    assert "b区委" not in html and "b街道" not in html
    assert f'value="{tree["branch_a1"].id}"' not in html  # its own subtree
    assert f'value="{other.id}"' not in html  # a street cannot hold a street
    html = client.get(f"/orgs/{tree['branch_a1'].id}/move").get_data(as_text=True)
    assert f'value="{other.id}"' in html and f'value="{tree["district_a"].id}"' in html


def test_a_missing_or_bad_parent_is_refused(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    response = post(client, f"/orgs/{tree['branch_a1'].id}/move", {"parent_id": "abc"})
    assert response.status_code == 400
    response = post(client, f"/orgs/{tree['branch_a1'].id}/move", {"parent_id": "999999"})
    assert response.status_code in (403, 404)
    assert fresh(tree["branch_a1"]).parent_id == tree["street_a"].id


# Closing and reopening


def test_closing_a_branch_with_active_members_is_refused_with_a_reason(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    make_user(tree["branch_a1"])
    make_user(tree["branch_a1"])
    response = post(client, f"/orgs/{tree['branch_a1'].id}/close")
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 名" in html and "转" in html
    assert fresh(tree["branch_a1"]).closed_at is None
    assert events(tree["branch_a1"]) == []


def test_an_emptied_branch_closes_is_marked_and_leaves_the_pickers(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    make_user(tree["branch_a2"], active=False)  # deactivated members do not hold a branch open
    branch = tree["branch_a2"]
    assert post(client, f"/orgs/{branch.id}/close").status_code == 302
    assert fresh(branch).closed_at is not None
    assert events(branch) == ["closed"]
    html = client.get(f"/orgs/{branch.id}").get_data(as_text=True)
    assert "已关闭" in html
    street = client.get(f"/orgs/{tree['street_a'].id}").get_data(as_text=True)
    assert "已关闭" in street
    for url in ("/members/new", f"/members?org_id={tree['street_a'].id}"):
        html = client.get(url).get_data(as_text=True)
        assert f'value="{branch.id}"' not in html
    from school.accounts.models import User

    organizer = db.session.scalar(sa.select(User).where(User.phone == ORGANIZER))
    assert branch.id not in [o.id for o in service.org_options(organizer)]
    assert branch.id in [o.id for o in service.org_options(organizer, include_closed=True)]


def test_a_closed_branch_can_be_reopened(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    branch = tree["branch_a2"]
    post(client, f"/orgs/{branch.id}/close")
    assert post(client, f"/orgs/{branch.id}/reopen").status_code == 302
    assert fresh(branch).closed_at is None
    assert events(branch) == ["closed", "reopened"]


def test_a_street_closes_only_after_everything_under_it(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    street = tree["street_a"]
    post(client, f"/orgs/{street.id}/close")
    assert fresh(street).closed_at is None
    for key in ("branch_a1", "branch_a2"):
        assert post(client, f"/orgs/{tree[key].id}/close").status_code == 302
    post(client, f"/orgs/{street.id}/close")
    assert fresh(street).closed_at is not None
    # and a branch cannot be reopened under a closed street
    post(client, f"/orgs/{tree['branch_a1'].id}/reopen")
    assert fresh(tree["branch_a1"]).closed_at is not None


def test_closing_an_org_of_another_district_is_refused(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    assert post(client, f"/orgs/{tree['branch_b2'].id}/close").status_code == 403
    assert post(client, f"/orgs/{tree['branch_b2'].id}/reopen").status_code == 403
    assert fresh(tree["branch_b2"]).closed_at is None


def test_members_cannot_change_the_tree(client):
    tree = make_tree()
    make_user(tree["branch_a1"], phone="13800000002")
    sign_in(client, "13800000002")
    token = csrf_from(client.get("/").get_data(as_text=True))
    response = client.post(f"/orgs/{tree['branch_a1'].id}/rename", data={"name": "x", "csrf_token": token})
    assert response.status_code == 403
    assert fresh(tree["branch_a1"]).name == "a街道第1支部"
