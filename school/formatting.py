"""How numbers are shown to people: durations, file sizes, 学时 (one copy for pages, API, CLI)."""


def clock(seconds: float | None) -> str | None:
    """12:34 or 1:02:03 from seconds (None stays None)."""
    if seconds is None:
        return None
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def human_size(n: float) -> str:
    """1.5 MB, 300 B: a file size as people read it."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def hours(value) -> str:
    """学时 as people write it: 0.5, 1, 0.25 (not 0.50)."""
    return format(value.normalize(), "f") if value is not None else "0"


def local_time(moment) -> str:
    """A stored (naive UTC) time as a local "2026-11-27 09:30" in the site's time zone."""
    if moment is None:
        return ""
    from flask_babel import format_datetime

    return format_datetime(moment, "yyyy-MM-dd HH:mm")
