"""The site and the worker with one named place where they stop, for the kill -9 tests.

A process started with FAULT_PAUSE=<point> and FAULT_DIR=<folder> writes <folder>/<point> (its pid)
when it reaches that point and waits there, so the test kills it exactly in the middle of the
operation. Without FAULT_PAUSE it is the plain site. Test code only: production modules are
wrapped here, never changed for the tests.

    gunicorn -c school/gunicorn_conf.py tests.faults.hooks:app
    flask --app tests.faults.hooks:app jobs worker
"""

import os
import time
from pathlib import Path

from school import create_app, worker

WAIT_SECONDS = 60  # the test kills the process long before; a forgotten one gives up


def pause(point: str) -> None:
    """Stop here when the test asked for this point (and say so through the marker file)."""
    if os.environ.get("FAULT_PAUSE") != point:
        return
    marker = Path(os.environ["FAULT_DIR"]) / point
    marker.write_text(str(os.getpid()))
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)
    raise RuntimeError(f"fault point {point}: nobody killed this process")


def install() -> None:
    """Wrap the functions at whose end (or start) a process may be asked to stop."""
    from whoosh import index as whoosh_index

    from school.media import service as media
    from school.reports import export_jobs
    from school.roster import service as roster

    apply_plan = roster.apply_plan

    def paused_apply_plan(*args, **kwargs):
        summary = apply_plan(*args, **kwargs)
        pause("import_applied")  # every member row written, the transaction not yet committed
        return summary

    roster.apply_plan = paused_apply_plan

    add_media = media.add_media

    def paused_add_media(*args, **kwargs):
        asset = add_media(*args, **kwargs)
        pause("upload_completing")  # the file moved to its final name, the row not committed
        return asset

    media.add_media = paused_add_media

    render = export_jobs.render

    def paused_render(*args, **kwargs):
        body = render(*args, **kwargs)
        pause("export_rendered")  # the report built, its file not yet written
        return body

    export_jobs.render = paused_render

    write_toc = whoosh_index.TOC.write

    def paused_write_toc(self, storage, indexname):
        pause("index_commit")  # the new segment's files written, the table of contents not
        return write_toc(self, storage, indexname)

    whoosh_index.TOC.write = paused_write_toc


install()
app = create_app()
worker._app = app  # the worker's threads use this app instead of building a second one
