"""The audit log: each organizer/admin action writes one entry (who, when, what, where from), refused
actions write none, the table is append-only in the database, and readers see only their subtree."""

import io
import json
import re
import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from school import db
from school.audit import service as audit
from school.audit.models import AuditEntry
from school.credits import service as credits
from school.credits.models import CreditEntry
from school.plans import service as plans
from school.reports import export_jobs
from school.warnings import service as warnings
from tests.conftest import csrf_from, sign_in
from tests.factories import make_admin, make_organizer, make_tree, make_user
from tests.meetings.meeting_data import form_tokens, only_meeting, post_meeting
from tests.plans.study_data import make_course

ADDRESS = "203.0.113.7"
BROWSER = "AuditTest/1.0 " + "x" * 400
ORGANIZER = "13800000001"


@pytest.fixture()
def tree():
    return make_tree()


def organizer(client, org, phone=ORGANIZER, name="审计员"):
    """Sign in a new organizer of org from ADDRESS with BROWSER; returns the user."""
    user = make_organizer(org, phone=phone, name=name)
    client.environ_base.update(REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT=BROWSER)
    sign_in(client, phone)
    return user


def post(client, url, data=None, page="/members"):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def entries(action: str | None = None) -> list[AuditEntry]:
    db.session.remove()
    stmt = sa.select(AuditEntry).order_by(AuditEntry.id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    return list(db.session.scalars(stmt))


def only(action: str) -> AuditEntry:
    found = entries(action)
    assert len(found) == 1, [e.action for e in entries()]
    return found[0]


def add_entry(app, action="member.transfer", org=None, actor=None, when=None, **details) -> None:
    with app.app_context():
        entry = audit.record(action, org_id=org.id if org else None, details=details, actor=actor)
        if when is not None:
            entry.created_at = when
        db.session.commit()


def listed(client, query: str = "") -> list[str]:
    """Action labels shown on the log page for a query (every page of it)."""
    found, page = [], 1
    while True:
        response = client.get(f"/audit?{query}&page={page}")
        assert response.status_code == 200, response.status_code
        html = response.get_data(as_text=True)
        found += re.findall(r'<summary><span class="name">([^<]+)</span>', html)
        if f"page={page + 1}" not in html:
            return found
        page += 1


# --- each hooked action writes exactly one entry ----------------------------------------------------


def test_transfer_writes_one_entry_with_actor_org_target_details_and_address(client, tree):
    actor = organizer(client, tree["district_a"])
    member = make_user(tree["branch_a1"], name="张三")
    response = post(
        client,
        f"/members/{member.id}/transfer",
        {"org_id": tree["branch_a2"].id, "reason": "搬家"},
        page=f"/members/{member.id}/transfer",
    )
    assert response.status_code == 302
    entry = only("member.transfer")
    assert entry.actor_id == actor.id and entry.actor_name == "审计员"
    assert entry.org_id == tree["branch_a1"].id  # filed under the branch the member left
    assert (entry.target_type, entry.target_id, entry.target_label) == ("user_account", member.id, "张三")
    assert entry.data == {
        "from": tree["branch_a1"].name,
        "to": tree["branch_a2"].name,
        "to_org_id": tree["branch_a2"].id,
        "reason": "搬家",
    }
    assert entry.address == ADDRESS
    assert entry.user_agent == BROWSER[:200]
    assert entry.created_at <= db.utcnow() and entry.created_at > db.utcnow() - timedelta(minutes=1)


def test_refused_transfer_writes_no_entry(client, tree):
    organizer(client, tree["district_a"])
    member = make_user(tree["branch_a1"])
    same = post(client, f"/members/{member.id}/transfer", {"org_id": tree["branch_a1"].id, "reason": ""})
    outside = post(client, f"/members/{member.id}/transfer", {"org_id": tree["branch_b1"].id, "reason": ""})
    assert same.status_code == 400 and outside.status_code == 403
    assert entries() == []


def test_rolled_back_action_leaves_no_entry(app, tree):
    actor = make_organizer(tree["district_a"])
    member = make_user(tree["branch_a1"])
    with app.app_context():
        from school.roster import members

        members.transfer_member(
            actor, db.session.get(type(member), member.id), tree["branch_a2"].id, "", db.utcnow()
        )
        db.session.rollback()
    assert entries() == []


def test_import_writes_one_entry_with_counts_and_file_name(client, tree):
    shutil.rmtree(Path(client.application.instance_path) / "imports", ignore_errors=True)
    actor = organizer(client, tree["district_a"])
    make_user(tree["branch_a1"], phone="13900000001", name="旧名")
    book = openpyxl.Workbook()
    for row in (
        ["姓名", "手机号", "所在支部", "党员类别", "在职情况", "流动党员"],
        ["新人甲", "13900000002", tree["branch_a1"].name, "正式党员", "在职", "否"],
        ["新人乙", "13900000003", tree["branch_a2"].name, "预备党员", "离退休", "否"],
        ["新名", "13900000001", tree["branch_a1"].name, "正式党员", "在职", "否"],
    ):
        book.active.append(row)
    data = io.BytesIO()
    book.save(data)
    page = client.get(f"/orgs/{tree['district_a'].id}/import")
    dry = client.post(
        f"/orgs/{tree['district_a'].id}/import",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "file": (io.BytesIO(data.getvalue()), "名单.xlsx"),
        },
        content_type="multipart/form-data",
    )
    assert entries() == []  # a dry run is no action
    html = dry.get_data(as_text=True)
    token = html.split("/import/")[1].split("/apply")[0]
    done = client.post(
        f"/orgs/{tree['district_a'].id}/import/{token}/apply", data={"csrf_token": csrf_from(html)}
    )
    assert done.status_code == 200
    entry = only("member.import")
    assert entry.actor_id == actor.id and entry.org_id == tree["district_a"].id
    assert entry.target_type == "org" and entry.target_id == tree["district_a"].id
    assert entry.data == {"file": "名单.xlsx", "created": 2, "updated": 1, "unchanged": 0, "skipped": 0}
    assert entry.address == ADDRESS


def test_deactivate_and_reactivate_write_one_entry_each(client, tree):
    organizer(client, tree["district_a"])
    member = make_user(tree["branch_a2"])
    assert post(client, f"/members/{member.id}/deactivate").status_code == 302
    assert post(client, f"/members/{member.id}/reactivate").status_code == 302
    assert [e.action for e in entries()] == ["member.deactivate", "member.reactivate"]
    assert {(e.org_id, e.target_id) for e in entries()} == {(tree["branch_a2"].id, member.id)}


def test_password_reset_entry_holds_no_password(client, tree):
    organizer(client, tree["district_a"])
    member = make_user(tree["branch_a1"])
    response = post(client, f"/members/{member.id}/reset-password")
    password = re.search(r'id="temp-password">([a-z0-9]+)<', response.get_data(as_text=True)).group(1)
    entry = only("member.password_reset")
    assert entry.target_id == member.id and entry.org_id == tree["branch_a1"].id
    assert entry.data == {}
    row = db.session.execute(sa.text("SELECT * FROM audit_entry")).one()  # anywhere in the row, as stored
    assert not any(password in str(value) for value in row)


def test_secrets_are_never_written_into_details(app, tree):
    add_entry(
        app, org=tree["city"], note="ok", password="p", nested={"token": "t", "api_secret": "s", "keep": 1}
    )
    assert only("member.transfer").data == {"note": "ok", "nested": {"keep": 1}}


def test_member_edit_records_before_and_after_of_changed_fields(client, tree):
    organizer(client, tree["district_a"])
    member = make_user(tree["branch_a1"], name="李四", phone="13900000009")
    data = {"name": "李肆", "phone": "13900000009", "member_status": "full", "employment": "", "floating": ""}
    assert post(client, f"/members/{member.id}/edit", data).status_code == 302
    entry = only("member.update")
    assert entry.data == {
        "display_name": {"before": "李四", "after": "李肆"},
        "member_status": {"before": None, "after": "full"},
    }
    assert entry.target_label == "李肆"


def test_tree_edits_are_recorded_under_the_org(client, tree):
    organizer(client, tree["city"])
    street = tree["street_a"]
    post(client, f"/orgs/{street.id}/rename", {"name": "新街道"}, page=f"/orgs/{street.id}/rename")
    post(
        client,
        f"/orgs/{street.id}/move",
        {"parent_id": tree["district_b"].id},
        page=f"/orgs/{street.id}/move",
    )
    rename, move = only("org.rename"), only("org.move")
    assert rename.data == {"old": "a街道", "new": "新街道"} and rename.org_id == street.id
    assert move.org_id == street.id and move.target_type == "org"
    assert move.data["old_id"] == tree["district_a"].id and move.data["new_id"] == tree["district_b"].id


def test_ledger_adjustment_and_reversal_are_recorded_for_the_member(app, tree):
    admin = make_admin(name="管理员")
    member = make_user(tree["branch_b1"], name="王五")
    with app.app_context():
        row = credits.adjust(member.id, "2.5", "补录", admin)
        db.session.commit()
        credits.reverse(db.session.get(CreditEntry, row.id), admin, "录错了")
        db.session.commit()
    adjust, reverse = only("credit.adjust"), only("credit.reverse")
    assert adjust.actor_id == admin.id and adjust.org_id == tree["branch_b1"].id
    assert adjust.target_id == member.id and adjust.target_label == "王五"
    assert adjust.data == {"entry": row.id, "amount": "2.50", "year": row.year, "reason": "补录"}
    assert reverse.data["amount"] == "-2.50" and reverse.data["reason"] == "录错了"
    assert adjust.address is None  # not a request: no address


def test_refused_adjustment_writes_no_entry(app, tree):
    member = make_user(tree["branch_b1"])
    with app.app_context():
        with pytest.raises(Exception):  # noqa: B017 (Invalid: no reason)
            credits.adjust(member.id, "2", "", make_admin())
        db.session.rollback()
    assert entries() == []


def test_meeting_cancel_writes_one_entry_not_one_per_attendee(client, tree):
    organizer(client, tree["branch_a1"])
    people = [make_user(tree["branch_a1"]) for _ in range(3)]
    assert post_meeting(client, tree["branch_a1"].id, people).status_code == 302
    meeting = only_meeting()
    token = form_tokens(client, f"/meetings/{meeting.id}")["csrf_token"]
    client.post(f"/meetings/{meeting.id}/cancel", data={"csrf_token": token, "reason": "重复登记"})
    assert [e.action for e in entries()] == ["meeting.record", "meeting.cancel"]
    recorded, cancelled = entries()
    assert recorded.data["attendees"] == 3 and recorded.org_id == tree["branch_a1"].id
    assert cancelled.data == {"reason": "重复登记", "attendees": 3}


def test_plan_create_update_and_close_are_recorded_with_changed_fields(app, tree):
    actor = make_organizer(tree["district_a"])
    course = make_course()
    with app.app_context():
        data = plans.PlanInput("学习计划", db.utcnow().date(), db.utcnow().date() + timedelta(days=30))
        data.course_ids = [course.id]
        plan = plans.save_plan(actor, tree["district_a"].id, data)
        db.session.commit()
        data.title, data.org_ids = "学习计划（修订）", [tree["branch_a1"].id]
        plans.save_plan(actor, tree["district_a"].id, data, plan)
        db.session.commit()
        plans.set_closed(plan, True, db.utcnow())
        db.session.commit()
    created, updated, closed = entries()
    assert (created.action, updated.action, closed.action) == ("plan.create", "plan.update", "plan.close")
    assert created.target_id == plan.id and created.org_id == tree["district_a"].id
    assert created.data["title"] == {"before": None, "after": "学习计划"}
    assert created.data["items"]["after"] == [{"course_id": course.id}]
    assert updated.data == {
        "title": {"before": "学习计划", "after": "学习计划（修订）"},
        "targets": {"before": [], "after": [{"kind": "org", "org_id": tree["branch_a1"].id}]},
    }
    assert closed.actor_id is None  # no request and no actor given: a system entry


def test_warning_rule_edit_is_recorded_site_wide(app):
    with app.app_context():
        data = warnings.RuleInput("inactive_share", "branch", "30", "50", "3", "14", "30", True)
        rule = warnings.save_rule(data, None, db.utcnow())
        db.session.commit()
        data.threshold = "60"
        warnings.save_rule(data, rule, db.utcnow())
        db.session.commit()
    created, updated = entries()
    assert created.action == "warning_rule.create" and created.org_id is None
    assert updated.data == {"threshold": {"before": "50.0", "after": "60.0"}}


def test_report_download_and_export_request_are_recorded(app, client, tree):
    actor = organizer(client, tree["district_a"])
    assert client.get(f"/reports/hours.csv?org_id={tree['street_a'].id}").status_code == 200
    entry = only("export.download")
    assert entry.org_id == tree["street_a"].id and entry.actor_id == actor.id and entry.address == ADDRESS
    assert entry.data == {"report": "hours", "format": "csv", "org_id": str(tree["street_a"].id), "year": ""}
    assert client.get(f"/compare.xlsx?org_id={tree['district_a'].id}").status_code == 200
    assert entries("export.download")[1].data["report"] == "comparison"
    with app.app_context():
        job = export_jobs.request_export(actor, "hours", "xlsx", {"org_id": str(tree["branch_a1"].id)})
        db.session.commit()
    request = only("export.request")
    assert request.target_type == "job" and request.target_id == job.id
    assert request.org_id == tree["branch_a1"].id


def test_refused_download_writes_no_entry(client, tree):
    organizer(client, tree["district_a"])
    assert client.get(f"/reports/hours.csv?org_id={tree['district_b'].id}").status_code == 403
    assert entries() == []


# --- append-only, enforced by the database ---------------------------------------------------------


def test_update_and_delete_are_refused_by_the_database(app, tree):
    add_entry(app, org=tree["city"], n=1)
    with app.app_context():
        for statement in ("UPDATE audit_entry SET action = 'x'", "DELETE FROM audit_entry"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.engine.begin() as conn:
                conn.execute(sa.text(statement))
        if db.engine.dialect.name == "postgresql":
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.engine.begin() as conn:
                conn.execute(sa.text("TRUNCATE audit_entry"))
    assert [e.action for e in entries()] == ["member.transfer"]


def test_the_orm_cannot_change_an_entry_either(app, tree):
    add_entry(app, org=tree["city"])
    with app.app_context():
        entry = db.session.scalars(sa.select(AuditEntry)).one()
        entry.action = "forged"
        with pytest.raises(sa.exc.DatabaseError):
            db.session.commit()
        db.session.rollback()
    assert only("member.transfer").action == "member.transfer"


# --- who may read what ----------------------------------------------------------------------------


def test_organizer_sees_only_entries_of_their_subtree(app, client, tree):
    add_entry(app, "member.transfer", tree["branch_a1"])
    add_entry(app, "member.import", tree["district_b"])
    add_entry(app, "warning_rule.update", None)  # site-wide: admins only
    organizer(client, tree["district_b"], phone="13800000002")
    assert listed(client) == ["导入党员"]
    client.post("/sign-out", data={"csrf_token": csrf_from(client.get("/").get_data(as_text=True))})
    organizer(client, tree["city"], phone="13800000003")
    assert len(listed(client)) == 2
    assert client.get(f"/audit?org_id={tree['district_a'].id}").status_code == 200
    assert len(listed(client, f"org_id={tree['district_a'].id}")) == 1


def test_admin_sees_everything(app, client, tree):
    add_entry(app, "member.transfer", tree["branch_a1"])
    add_entry(app, "warning_rule.update", None)
    make_admin(phone="13800000004")
    sign_in(client, "13800000004")
    assert len(listed(client)) == 2


def test_filter_outside_subtree_is_refused_and_members_get_403(client, tree):
    organizer(client, tree["district_b"])
    assert client.get(f"/audit?org_id={tree['district_a'].id}").status_code == 403
    assert client.get(f"/audit.csv?org_id={tree['district_a'].id}").status_code == 403
    assert client.get("/audit?action=no.such").status_code == 400
    member = make_user(tree["branch_a1"], phone="13800000005")
    client.post("/sign-out", data={"csrf_token": csrf_from(client.get("/").get_data(as_text=True))})
    sign_in(client, member.phone)
    assert client.get("/audit").status_code == 403
    assert client.get("/audit.csv").status_code == 403


def test_filters_by_action_actor_organisation_and_dates(app, client, tree):
    somebody = make_organizer(tree["district_a"], name="赵六", phone="13700000001")
    now = db.utcnow()
    add_entry(app, "member.transfer", tree["branch_a1"], actor=somebody, when=now - timedelta(days=10))
    add_entry(app, "member.import", tree["branch_a2"], when=now - timedelta(days=1))
    add_entry(app, "plan.create", tree["branch_b1"])
    make_admin(phone="13800000004")
    sign_in(client, "13800000004")
    assert len(listed(client, "action=member.import")) == 1
    assert len(listed(client, "actor=赵六")) == 1
    assert len(listed(client, "actor=13700000001")) == 1  # by the actor's phone
    assert len(listed(client, f"org_id={tree['district_a'].id}")) == 2
    since = (now - timedelta(days=3)).date().isoformat()
    assert len(listed(client, f"from={since}")) == 2
    until = (now - timedelta(days=5)).date().isoformat()
    assert len(listed(client, f"to={until}")) == 1
    assert client.get("/audit?from=yesterday").status_code == 400


def test_the_list_is_paged(app, client, tree):
    for n in range(25):
        add_entry(app, "member.transfer", tree["branch_a1"], n=n)
    organizer(client, tree["district_a"])
    first = client.get("/audit").get_data(as_text=True)
    assert first.count("<details>") == 20 and "page=2" in first
    second = client.get("/audit?page=2").get_data(as_text=True)
    assert second.count("<details>") == 5
    assert len(listed(client)) == 25


def test_csv_download_of_the_log_is_itself_recorded(app, client, tree):
    add_entry(app, "member.transfer", tree["branch_a1"], reason="调动")
    actor = organizer(client, tree["district_a"])
    response = client.get("/audit.csv")
    assert response.status_code == 200
    text = response.data.decode("utf-8-sig")
    assert "调动" in text
    entry = only("audit.export")
    assert entry.actor_id == actor.id and entry.org_id == tree["district_a"].id and entry.data == {"rows": 1}


def test_details_json_round_trips_decimals_and_dates(app, tree):
    add_entry(app, org=tree["city"], amount=Decimal("1.50"), day=db.utcnow().date())
    data = json.loads(only("member.transfer").details)
    assert data["amount"] == "1.50" and len(data["day"]) == 10


def test_adding_a_member_is_recorded(client, tree):
    actor = organizer(client, tree["district_a"])
    data = {"name": "新党员", "phone": "13900000011", "org_id": tree["branch_a2"].id, "member_status": "full"}
    assert post(client, "/members/new", data, page="/members/new").status_code == 302
    entry = only("member.create")
    assert entry.actor_id == actor.id and entry.org_id == tree["branch_a2"].id
    assert entry.target_label == "新党员" and entry.data == {"phone": "13900000011"}


def test_create_admin_command_records_a_role_grant_without_actor(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "accounts",
            "create-admin",
            "--username",
            "root2",
            "--name",
            "根",
            "--password",
            "Long-pass-2026!",
        ]
    )
    assert result.exit_code == 0, result.output
    entry = only("role.grant")
    assert entry.actor_id is None and entry.org_id is None and entry.address is None
    assert entry.target_label == "根" and entry.data == {"role": "admin", "source": "cli"}


def test_client_address_comes_through_trusted_proxies_only(app, client, tree, monkeypatch):
    from werkzeug.middleware.proxy_fix import ProxyFix

    organizer(client, tree["district_a"])
    forwarded = {"X-Forwarded-For": "198.51.100.9"}
    client.get(f"/reports/hours.csv?org_id={tree['district_a'].id}", headers=forwarded)
    assert only("export.download").address == ADDRESS  # TRUSTED_PROXIES=0: the header is ignored
    monkeypatch.setattr(app, "wsgi_app", ProxyFix(app.wsgi_app, x_for=1))  # as TRUSTED_PROXIES=1 sets up
    client.get(f"/reports/hours.csv?org_id={tree['district_a'].id}", headers=forwarded)
    assert entries("export.download")[1].address == "198.51.100.9"
