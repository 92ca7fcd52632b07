from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from school import db
from school.notifications import service as notifications
from school.notifications.models import Notification
from school.plans.service import send_plan_reminders
from tests.conftest import csrf_from, sign_in
from tests.factories import make_org, make_user
from tests.plans.study_data import complete, make_course, make_plan

DUE = date(2026, 12, 31)


class RecordingSender(notifications.Sender):
    delivered: list = []

    def deliver(self, user, notification):
        RecordingSender.delivered.append((user.id, notification.key))


@pytest.fixture()
def recorded(app):
    RecordingSender.delivered = []
    old = app.config["NOTIFY_SENDER"]
    notifications.SENDERS["recording"] = RecordingSender
    app.config["NOTIFY_SENDER"] = "recording"
    yield RecordingSender.delivered
    app.config["NOTIFY_SENDER"] = old
    del notifications.SENDERS["recording"]


def remind(app, today: date) -> int:
    with app.app_context():
        sent = send_plan_reminders(today)
        db.session.commit()
        return sent


def keys(user) -> list[str]:
    stmt = sa.select(Notification.key).where(Notification.user_id == user.id).order_by(Notification.id)
    return list(db.session.scalars(stmt))


@pytest.fixture()
def plan_setup(app):
    branch = make_org()
    course = make_course(lessons=2)
    plan = make_plan(branch, "年度学习", DUE, [course])
    return branch, course, plan


def test_send_stores_once_per_key_and_calls_the_sender(app, recorded):
    user = make_user(make_org())
    with app.app_context():
        assert notifications.send(user, "note", "标题", "正文", "/", key="k1") is not None
        assert notifications.send(user, "note", "标题", "正文", "/", key="k1") is None
        db.session.commit()
    assert recorded == [(user.id, "k1")]
    assert keys(user) == ["k1"]


def test_sender_can_be_named_by_module_and_class(app):
    with app.app_context():
        sender = notifications.get_sender("school.notifications.service:LogSender")
    assert isinstance(sender, notifications.LogSender)


def test_log_sender_is_the_default(app, caplog):
    user = make_user(make_org())
    with app.app_context(), caplog.at_level("INFO", logger="school.notifications.service"):
        assert isinstance(notifications.get_sender(), notifications.LogSender)
        notifications.send(user, "note", "你好", key="k")
    assert "你好" in caplog.text


def test_reminders_seven_and_one_day_before_and_the_day_after_the_deadline(app, plan_setup, recorded):
    branch, _, plan = plan_setup
    member = make_user(branch)
    assert remind(app, DUE - timedelta(days=8)) == 0
    assert remind(app, DUE - timedelta(days=7)) == 1
    assert remind(app, DUE - timedelta(days=3)) == 0
    assert remind(app, DUE - timedelta(days=1)) == 1
    assert remind(app, DUE) == 0
    assert remind(app, DUE + timedelta(days=1)) == 1
    assert remind(app, DUE + timedelta(days=2)) == 0
    assert keys(member) == [f"plan:{plan.id}:due-7", f"plan:{plan.id}:due-1", f"plan:{plan.id}:overdue"]
    assert len(recorded) == 3
    titles = list(db.session.scalars(sa.select(Notification.title).order_by(Notification.id)))
    assert "7" in titles[0] and "年度学习" in titles[0] and "逾期" in titles[2]


def test_running_reminders_twice_sends_nothing_more(app, plan_setup, recorded):
    branch, _, _ = plan_setup
    make_user(branch), make_user(branch)
    assert remind(app, DUE - timedelta(days=7)) == 2
    assert remind(app, DUE - timedelta(days=7)) == 0
    assert len(recorded) == 2


def test_members_who_completed_the_plan_are_not_reminded(app, plan_setup, recorded):
    branch, course, _ = plan_setup
    done, halfway = make_user(branch), make_user(branch)
    for lesson in course.lessons:
        complete(done, lesson)
    complete(halfway, course.lessons[0])
    assert remind(app, DUE - timedelta(days=1)) == 1
    assert keys(done) == [] and len(keys(halfway)) == 1


def test_closed_plans_and_members_outside_the_targets_are_not_reminded(app, plan_setup, recorded):
    branch, _, plan = plan_setup
    make_user(branch)
    plan.closed_at = db.utcnow()
    db.session.commit()
    assert remind(app, DUE - timedelta(days=1)) == 0


def test_reminder_days_come_from_the_setting(app, plan_setup, recorded):
    branch, _, _ = plan_setup
    make_user(branch)
    app.config["PLAN_REMINDER_DAYS"] = "3"
    try:
        assert remind(app, DUE - timedelta(days=7)) == 0
        assert remind(app, DUE - timedelta(days=3)) == 1
    finally:
        app.config["PLAN_REMINDER_DAYS"] = "7,1"


def test_notification_page_lists_mine_and_marks_them_read(app, client):
    me = make_user(make_org(), phone="13900000001")
    other = make_user(make_org())
    with app.app_context():
        notifications.send(me, "note", "我的通知", key="a")
        notifications.send(other, "note", "别人的通知", key="b")
        db.session.commit()
    sign_in(client, "13900000001")
    home = client.get("/").get_data(as_text=True)
    assert '<span class="badge-count">1</span>' in home
    html = client.get("/notifications").get_data(as_text=True)
    assert "我的通知" in html and "别人的通知" not in html
    assert 'class="badge-count"' not in client.get("/").get_data(as_text=True)
    db.session.expire_all()
    assert notifications.unread_count(other.id) == 1


def test_mark_all_read(app, client):
    me = make_user(make_org(), phone="13900000001")
    with app.app_context():
        notifications.send(me, "note", "一", key="a")
        notifications.send(me, "note", "二", key="b")
        db.session.commit()
    sign_in(client, "13900000001")
    token = csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/notifications/read", data={"csrf_token": token}).status_code == 302
    assert notifications.unread_count(me.id) == 0


def test_notifications_need_sign_in(client):
    assert client.get("/notifications").status_code == 302
