"""Daily evaluation of the warning rules."""

from huey import crontab

from school.extensions import huey


@huey.periodic_task(crontab(hour="18", minute="30"))
def evaluate_warnings() -> str:
    """Daily (18:30 UTC, 02:30 in China, after the day's study): raise, escalate, resolve warnings."""
    from school import db
    from school.warnings.service import evaluate
    from school.worker import get_app

    with get_app().app_context():
        outcome = evaluate()
        db.session.commit()
        return str(outcome)
