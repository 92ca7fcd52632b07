"""Extension objects, created without an app; create_app() binds them. Imports no feature."""

from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from huey import RedisHuey, SqliteHuey

from school import settings

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


def make_huey(url: str):
    """The Huey queue for a QUEUE_URL: redis://… for many machines, sqlite:///file for one."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("school", url=url)
    if url.startswith("sqlite:///"):
        return SqliteHuey("school", filename=url[len("sqlite:///") :])
    raise ValueError(f"QUEUE_URL must be redis://… or sqlite:///…, not {url!r}")


# Built at import because Huey tasks are declared with its decorators; the worker and the site
# read the same QUEUE_URL.
huey = make_huey(settings.queue_url())
