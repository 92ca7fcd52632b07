"""Every setting of the site: read from the environment once, each with its default and why.

Nothing else in the code reads os.environ for configuration; `load()` is the one list of what is
configurable, and README.md's settings table mirrors it.
"""

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def instance_dir() -> Path:
    """Folder for machine-local state (SQLite files, the generated secret key); never in git."""
    path = Path(_env("INSTANCE_DIR", str(ROOT / "instance")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _secret_key(folder: Path) -> str:
    # Generated once per installation and kept beside the database, so sessions survive restarts
    # and no key ever sits in the code. O_EXCL makes two processes starting together agree.
    path = folder / "secret_key"
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    for _ in range(50):  # the writer may still be flushing
        key = path.read_text().strip()
        if key:
            return key
    raise RuntimeError(f"empty secret key file {path}")


def queue_url() -> str:
    """Job queue: a SQLite file by default; redis://host:6379/0 lets workers run on any machine."""
    return _env("QUEUE_URL", f"sqlite:///{instance_dir() / 'queue.db'}")


def log_format() -> str:
    """Logs as "json" lines (collected by journald, Docker…), "text", or "auto": text on a terminal."""
    return _env("LOG_FORMAT", "auto")


def load() -> dict:
    """The configuration dict for create_app(), from the environment and documented defaults."""
    folder = instance_dir()
    return {
        # Database: SQLite file by default; postgresql://user@host/db for scale-out.
        "DATABASE_URL": _env("DATABASE_URL", f"sqlite:///{folder / 'school.db'}"),
        "QUEUE_URL": queue_url(),
        # Uploaded originals and transcoded renditions; nginx can serve it directly.
        "MEDIA_DIR": _env("MEDIA_DIR", str(ROOT / "media")),
        # Whoosh search index folder (written by the worker only).
        "INDEX_DIR": _env("INDEX_DIR", str(folder / "index")),
        # Signs sessions and CSRF tokens; generated once under instance/ when not given.
        "SECRET_KEY": os.environ.get("SECRET_KEY") or _secret_key(folder),
        # Language for people who chose none and whose browser asks for none we have.
        "BABEL_DEFAULT_LOCALE": _env("DEFAULT_LANGUAGE", "zh_CN"),
        "BABEL_DEFAULT_TIMEZONE": _env("TIMEZONE", "Asia/Shanghai"),
        # Number of reverse proxies (nginx) in front whose X-Forwarded-* headers are trusted.
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        # Mark cookies Secure always (they are also Secure on any request that arrived over HTTPS).
        "SESSION_COOKIE_SECURE": _flag("COOKIE_SECURE", False),
        "PREFERRED_URL_SCHEME": _env("PREFERRED_URL_SCHEME", "http"),
        # Largest request body for forms and JSON; big uploads come in chunks below this size.
        "MAX_CONTENT_LENGTH": _int("MAX_REQUEST_BYTES", 16 * 1024 * 1024),
        # Largest uploaded video/audio original (bytes); documents and subtitles have their own.
        "MAX_UPLOAD_BYTES": _int("MAX_UPLOAD_BYTES", 2 * 1024**3),
        "MAX_DOCUMENT_BYTES": _int("MAX_DOCUMENT_BYTES", 200 * 1024**2),
        # Unfinished uploads are deleted after this many hours.
        "UPLOAD_EXPIRY_HOURS": _int("UPLOAD_EXPIRY_HOURS", 24),
        # "nginx": answer media requests with X-Accel-Redirect and let nginx send the bytes.
        "MEDIA_OFFLOAD": _env("MEDIA_OFFLOAD", ""),
        # Limits of one transcode: wall-clock seconds and memory of ffmpeg.
        "TRANSCODE_TIMEOUT_SECONDS": _int("TRANSCODE_TIMEOUT_SECONDS", 3 * 3600),
        # Sign-in throttling: failures allowed per window, per account and per client address.
        "LOGIN_MAX_FAILURES_ACCOUNT": _int("LOGIN_MAX_FAILURES_ACCOUNT", 5),
        "LOGIN_MAX_FAILURES_ADDRESS": _int("LOGIN_MAX_FAILURES_ADDRESS", 30),
        "LOGIN_WINDOW_SECONDS": _int("LOGIN_WINDOW_SECONDS", 15 * 60),
        "LOGIN_LOCKOUT_SECONDS": _int("LOGIN_LOCKOUT_SECONDS", 15 * 60),
        # Roles (comma-separated, e.g. "admin,organizer") that must sign in with an authenticator-app
        # code after the password; they set it up right after their next sign-in. Empty: optional.
        "MFA_REQUIRED_ROLES": _env("MFA_REQUIRED_ROLES", ""),
        # Signed-in sessions last this long without a visit before a new sign-in is needed.
        "SESSION_DAYS": _int("SESSION_DAYS", 14),
        # A running job whose worker stops renewing its lease for this long is given to another.
        "JOB_LEASE_SECONDS": _int("JOB_LEASE_SECONDS", 120),
        "JOB_MAX_ATTEMPTS": _int("JOB_MAX_ATTEMPTS", 3),
        # Worker threads per worker process.
        "WORKER_THREADS": _int("WORKER_THREADS", 2),
        # Yearly 学时 quota for members, and for branch secretaries and committee members
        # (anyone holding an organizer role), per the 干部教育培训 rules.
        "QUOTA_HOURS": _env("QUOTA_HOURS", "32"),
        "QUOTA_HOURS_ORGANIZER": _env("QUOTA_HOURS_ORGANIZER", "56"),
        # A lesson video counts as watched at this share of its length (percent, union of the
        # intervals really played).
        "WATCH_COMPLETE_PERCENT": _int("WATCH_COMPLETE_PERCENT", 90),
        # A text/document lesson set to "read" counts as read after this many seconds on the page.
        "READ_MINIMUM_SECONDS": _int("READ_MINIMUM_SECONDS", 120),
        # 每日答题: questions per day, 学时 credited for a passed daily quiz, and the yearly cap on
        # that credit (0 turns the credit off).
        "DAILY_QUIZ_QUESTIONS": _int("DAILY_QUIZ_QUESTIONS", 5),
        "DAILY_QUIZ_PASS_PERCENT": _int("DAILY_QUIZ_PASS_PERCENT", 60),
        "DAILY_QUIZ_CREDIT_HOURS": _env("DAILY_QUIZ_CREDIT_HOURS", "0.1"),
        "DAILY_QUIZ_CREDIT_CAP_HOURS": _env("DAILY_QUIZ_CREDIT_CAP_HOURS", "5"),
        # Study plan reminders: days before the deadline (comma-separated); one more the day after.
        "PLAN_REMINDER_DAYS": _env("PLAN_REMINDER_DAYS", "7,1"),
        # Where notifications go besides the in-app list: "log", or "package.module:Class" with
        # deliver(user, notification) (SMS, WeChat).
        "NOTIFY_SENDER": _env("NOTIFY_SENDER", "log"),
        # Member import (XLSX/CSV): largest file and most member rows an organizer may upload.
        "IMPORT_MAX_BYTES": _int("IMPORT_MAX_BYTES", 5 * 1024 * 1024),
        "IMPORT_MAX_ROWS": _int("IMPORT_MAX_ROWS", 20000),
        # Offline lessons and meetings (三会一课) may be recorded up to this many days after they were held.
        "MEETING_MAX_AGE_DAYS": _int("MEETING_MAX_AGE_DAYS", 366),
        # Report exports with more rows than this are written by the job worker (the page shows
        # progress, then a download link) instead of during the request; the files are deleted
        # after EXPORT_KEEP_HOURS.
        "EXPORT_INLINE_ROWS": _int("EXPORT_INLINE_ROWS", 5000),
        "EXPORT_KEEP_HOURS": _int("EXPORT_KEEP_HOURS", 24),
        # Log lines (see log_format) on stderr, and the lowest level written (DEBUG shows health checks).
        "LOG_FORMAT": log_format(),
        "LOG_LEVEL": _env("LOG_LEVEL", "INFO"),
        # Paging of lists.
        "PER_PAGE": _int("PER_PAGE", 20),
        # Show organizers a ranking of a branch's members by 学时 on the comparison page. Discouraged,
        # so off: personal leaderboards were criticised as formalism (形式主义) and national rules
        # turn against point rankings; organisations are compared by participation rates instead.
        "PERSONAL_RANKINGS": _flag("PERSONAL_RANKINGS", False),
    }
