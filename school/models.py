"""Imports every feature's models so Alembic and tests see the whole schema."""


def load_all() -> None:
    """Import all model modules (each registers its tables on db.Base.metadata)."""
    import school.accounts.models  # noqa: F401
    import school.audit.models  # noqa: F401
    import school.courses.models  # noqa: F401
    import school.credits.models  # noqa: F401
    import school.jobs.models  # noqa: F401
    import school.learning.models  # noqa: F401
    import school.media.models  # noqa: F401
    import school.meetings.models  # noqa: F401
    import school.notifications.models  # noqa: F401
    import school.orgs.models  # noqa: F401
    import school.plans.models  # noqa: F401
    import school.quizzes.models  # noqa: F401
    import school.roster.models  # noqa: F401
    import school.warnings.models  # noqa: F401
