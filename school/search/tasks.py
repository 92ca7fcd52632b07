"""Search jobs: the worker is the only writer of the index."""

from school.jobs.service import handler
from school.search import service


@handler("search.index_course")
def index_course_job(job, progress) -> dict:
    """Replace one course's documents in the index."""
    return {"documents": service.index_course(job.args["course_id"])}


@handler("search.rebuild")
def rebuild_job(job, progress) -> dict:
    """Rebuild the whole index from the database and swap it in."""
    count = service.rebuild(lambda done, total: progress(done * 100 / max(total, 1)))
    return {"documents": count}
