"""Daily study plan reminders."""

from huey import crontab

from school.extensions import huey


@huey.periodic_task(crontab(hour="1", minute="15"))
def plan_reminders() -> int:
    """Daily (01:15 UTC, 09:15 in China): remind members of plans due soon or just overdue."""
    from school import db
    from school.plans.service import _today, send_plan_reminders
    from school.worker import get_app

    with get_app().app_context():
        sent = send_plan_reminders(_today())
        db.session.commit()
        return sent
