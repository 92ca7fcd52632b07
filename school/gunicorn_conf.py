"""gunicorn settings for `make run` (HOST/PORT from the environment)."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_WORKERS", "2"))
accesslog = "-"
graceful_timeout = 10
timeout = 60
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_fork(server, worker):
    # Each worker must open its own database connections, never share the parent's.
    from school import db

    if db.engine is not None:
        db.engine.dispose(close=False)
    # jieba's dictionary takes ~0.5 s to load: once per worker, before the first search.
    from school.search.analysis import load_dictionary

    load_dictionary()
