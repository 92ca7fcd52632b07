from tests.conftest import sign_in
from tests.factories import make_admin, make_organizer, make_tree, make_user


def setup_people():
    tree = make_tree()
    a = [make_user(tree["branch_a1"], name=f"甲{n}") for n in range(3)]
    b = [make_user(tree["branch_b1"], name=f"乙{n}") for n in range(2)]
    make_organizer(tree["district_a"], phone="13800000001")
    return tree, a, b


def test_organizer_sees_only_members_of_their_subtree(client):
    _tree, a, b = setup_people()
    sign_in(client, "13800000001")
    html = client.get("/members").get_data(as_text=True)
    assert all(m.display_name in html for m in a)
    assert not any(m.display_name in html for m in b)


def test_organizer_asking_for_another_districts_members_is_refused(client):
    tree, _a, _b = setup_people()
    sign_in(client, "13800000001")
    other = tree["district_b"].id
    assert client.get(f"/members?org_id={other}").status_code == 403
    assert client.get(f"/members?org_id={tree['branch_b1'].id}&page=2").status_code == 403
    assert client.get(f"/orgs/{other}").status_code == 403
    assert client.get(f"/api/v1/orgs/{other}").status_code == 403
    assert client.get(f"/api/v1/members?org_id={other}").status_code == 403
    assert client.get("/members?org_id=abc").status_code == 403


def test_paging_and_page_size_never_leak_other_subtrees(client):
    _tree, a, b = setup_people()
    sign_in(client, "13800000001")
    seen = set()
    for page in range(1, 5):
        data = client.get(f"/api/v1/members?page={page}&per_page=1000").get_json()
        seen |= {item["id"] for item in data["items"]}
        assert data["per_page"] <= 100
    assert seen == {m.id for m in a}
    assert client.get("/members?page=-3").status_code == 200
    assert client.get("/members?page=99999999999999999999").status_code == 200


def test_member_list_searches_by_name_and_phone(client):
    tree, a, _b = setup_people()
    sign_in(client, "13800000001")
    by_name = client.get("/api/v1/members?q=甲1").get_json()
    assert [m["id"] for m in by_name["items"]] == [a[1].id]
    by_phone = client.get(f"/api/v1/members?q={a[2].phone[-6:]}").get_json()
    assert [m["id"] for m in by_phone["items"]] == [a[2].id]
    wildcard = client.get("/api/v1/members?q=%25").get_json()
    assert wildcard["total"] == 0


def test_members_cannot_open_the_member_list(client):
    tree = make_tree()
    make_user(tree["branch_a1"], phone="13800000002")
    sign_in(client, "13800000002")
    assert client.get("/members").status_code == 403
    assert client.get("/api/v1/members").status_code == 403


def test_admin_sees_every_member(client):
    _tree, a, b = setup_people()
    make_admin(phone="13800000009")
    sign_in(client, "13800000009")
    data = client.get("/api/v1/members?per_page=100").get_json()
    assert {m.id for m in a + b} <= {item["id"] for item in data["items"]}


def test_org_page_shows_children_with_head_counts(client):
    tree, _a, _b = setup_people()
    sign_in(client, "13800000001")
    html = client.get(f"/orgs/{tree['district_a'].id}").get_data(as_text=True)
    assert "a街道" in html and "3 名党员" in html
    data = client.get(f"/api/v1/orgs/{tree['street_a'].id}").get_json()
    assert data["members"] == 3
    assert {c["name"]: c["members"] for c in data["children"]} == {"a街道第1支部": 3, "a街道第2支部": 0}


def test_organizer_role_revoked_takes_effect_on_next_request(client):
    import sqlalchemy as sa

    from school import db
    from school.accounts.models import RoleGrant, User

    tree, _a, _b = setup_people()
    sign_in(client, "13800000001")
    assert client.get("/members").status_code == 200
    user = db.session.scalar(sa.select(User).where(User.phone == "13800000001"))
    db.session.execute(sa.delete(RoleGrant).where(RoleGrant.user_id == user.id))
    db.session.commit()
    assert client.get("/members").status_code == 403


def test_who_may_view_a_member(app):
    from school.access import may_view_member

    tree, a, b = setup_people()
    organizer = make_organizer(tree["district_b"], phone="13800000002")
    with app.test_request_context():
        assert may_view_member(a[0], a[0])  # oneself
        assert not may_view_member(a[0], a[1])  # another member of the same branch
        assert may_view_member(organizer, b[0]) and not may_view_member(organizer, a[0])
