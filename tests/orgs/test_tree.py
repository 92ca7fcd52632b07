import sqlalchemy as sa

from school import db
from school.errors import Invalid
from school.orgs import service
from school.orgs.models import Org, OrgClosure
from tests.factories import make_org, make_tree


def ids(stmt) -> set[int]:
    return set(db.session.scalars(stmt))


def test_subtree_holds_the_node_and_everything_below_it():
    tree = make_tree()
    below_a = ids(service.subtree_ids(tree["district_a"].id))
    expected = {tree[k].id for k in ("district_a", "street_a", "branch_a1", "branch_a2")}
    assert below_a == expected


def test_ancestors_run_from_the_root_down():
    tree = make_tree()
    names = [o.name for o in service.ancestors(tree["branch_b2"])]
    assert names == ["示范市委", "b区委", "b街道", "b街道第2支部"]


def test_moving_a_subtree_moves_its_scope_and_depths():
    tree = make_tree()
    service.move_org(tree["street_a"], tree["district_b"])
    db.session.commit()
    assert tree["branch_a1"].id in ids(service.subtree_ids(tree["district_b"].id))
    assert tree["branch_a1"].id not in ids(service.subtree_ids(tree["district_a"].id))
    assert db.session.get(Org, tree["branch_a1"].id).depth == 3
    # the closure table stays exact: one row per ancestor/descendant pair
    rows = db.session.scalar(sa.select(sa.func.count()).select_from(OrgClosure))
    depths = db.session.scalars(sa.select(Org.depth)).all()
    assert rows == sum(d + 1 for d in depths)


def test_an_org_cannot_move_into_its_own_subtree():
    tree = make_tree()
    try:
        service.move_org(tree["district_a"], tree["branch_a1"])
    except Invalid:
        pass
    else:
        raise AssertionError("moved into its own subtree")


def test_children_carry_the_head_count_of_their_whole_subtree():
    from tests.factories import make_user

    tree = make_tree()
    for _ in range(3):
        make_user(tree["branch_a1"])
    make_user(tree["branch_a2"])
    make_user(tree["branch_b1"])
    make_user(tree["branch_a2"], active=False)
    counts = {o.name: n for o, n in service.children_with_counts(tree["city"])}
    assert counts == {"a区委": 4, "b区委": 1}


def test_a_branch_named_with_nothing_is_refused():
    try:
        make_org("   ", "branch")
    except Invalid as error:
        assert error.message
    else:
        raise AssertionError("empty name accepted")
