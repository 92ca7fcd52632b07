"""The Huey worker's entry: builds the app once and imports every module that defines tasks.

Run with `flask --app app jobs worker` (any number of machines when QUEUE_URL is redis://).
"""

import importlib

from flask import current_app, has_app_context

from school.extensions import huey
from school.system import logs

# Every feature's tasks.py, so their handlers and Huey tasks are registered in the worker.
TASK_MODULES = [
    "school.jobs.tasks",
    "school.accounts.tasks",
    "school.media.tasks",
    "school.search.tasks",
    "school.plans.tasks",
    "school.reports.tasks",
    "school.warnings.tasks",
]

_app = None


def get_app():
    """The one app of this worker process (or the app already active, e.g. in tests)."""
    global _app
    if has_app_context():
        return current_app._get_current_object()
    if _app is None:
        from school import create_app

        _app = create_app()
    return _app


def load_tasks() -> None:
    """Import every tasks module (idempotent)."""
    for name in TASK_MODULES:
        importlib.import_module(name)


# Every log record of a job's thread carries its job id.
huey.pre_execute()(logs.on_job_start)
huey.post_execute()(logs.on_job_end)


@huey.on_startup()
def _recover_lost_jobs() -> None:
    # A worker that was killed left its jobs "running"; take them back at once on restart.
    from school import db
    from school.jobs import service

    with get_app().app_context():
        service.sweep(db.utcnow(), worker_start=True)
        from school.media.storage import clean_work_dirs

        clean_work_dirs()  # half-written renditions of a killed worker's transcodes
    from school.search.analysis import load_dictionary

    load_dictionary()  # the worker writes the index: load jieba once, at start
