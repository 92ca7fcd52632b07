"""gunicorn settings for `make run` (HOST/PORT from the environment)."""

import os

from gunicorn import glogging

from school import settings
from school.system import logs

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_WORKERS", "2"))
# No access log of gunicorn's: the app writes one line per request itself, with its request id,
# user, status and duration (school/system/logs.py), in the same format as every other line.
accesslog = None
graceful_timeout = 10
timeout = 60
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's most (default 4094): a search address of ~900 Chinese characters still reaches the app,
# which searches the first 100 and says so, instead of gunicorn's English "414 URI Too Long".
limit_request_line = 8190


class AppFormatLogger(glogging.Logger):
    """gunicorn's own messages (boot, worker exits, timeouts) in the app's log format."""

    def setup(self, cfg):
        super().setup(cfg)
        kind = logs.resolve_format(settings.log_format())
        for handler in self.error_log.handlers:
            handler.setFormatter(logs.formatter(kind))


logger_class = AppFormatLogger


def post_fork(server, worker):
    # Each worker must open its own database connections, never share the parent's.
    from school import db

    if db.engine is not None:
        db.engine.dispose(close=False)
    # jieba's dictionary takes ~0.5 s to load: once per worker, before the first search.
    from school.search.analysis import load_dictionary

    load_dictionary()
