"""`flask jobs list|retry ID|worker`."""

import click
from flask.cli import with_appcontext

from school import db
from school.jobs import service

jobs_cli = click.Group("jobs", help="Background jobs.")


@jobs_cli.command("list")
@click.option("--state", type=click.Choice(["queued", "running", "done", "failed"]))
@click.option("--limit", default=50, show_default=True)
@with_appcontext
def list_command(state: str | None, limit: int) -> None:
    """Show the newest jobs with state, progress, attempts and last message."""
    jobs = service.list_jobs(limit, state)
    if not jobs:
        click.echo("no jobs")
    for job in jobs:
        click.echo(
            f"{job.id:>6}  {job.kind:<28} {job.state:<8} {job.progress:>3}%  "
            f"try {job.attempts}/{job.max_attempts}  {job.created_at:%Y-%m-%d %H:%M}  "
            f"{(job.message or '')[:60]}"
        )


@jobs_cli.command("retry")
@click.argument("job_id", type=int)
@with_appcontext
def retry_command(job_id: int) -> None:
    """Queue a failed job again."""
    job = service.retry(job_id)
    db.session.commit()
    click.echo(f"job {job.id} queued again")


@jobs_cli.command("worker")
@click.option("--threads", type=int, default=None, help="Worker threads (default WORKER_THREADS).")
@click.option(
    "--periodic/--no-periodic",
    default=True,
    help="Also run the periodic tasks (reminders, warnings, sweeps); keep them on one worker machine.",
)
@with_appcontext
def worker_command(threads: int | None, periodic: bool) -> None:
    """Run the job worker (Huey consumer) until stopped."""
    from flask import current_app

    from school.extensions import huey
    from school.worker import load_tasks

    load_tasks()
    workers = threads or current_app.config["WORKER_THREADS"]
    # max_delay: an idle worker still looks for new jobs every second (a lecturer is waiting).
    # Every consumer with periodic on schedules the periodic tasks: with several worker machines,
    # one runs them (they are idempotent, so two at once only cost work, never double effects).
    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=periodic, max_delay=1.0)
    state = "on" if periodic else "off"
    click.echo(f"worker: {type(huey).__name__}, {workers} threads, periodic tasks {state}")
    consumer.run()
