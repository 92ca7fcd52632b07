"""学习档案: one member's study record for a year (completed lessons, the 学时 ledger, the quota),
as a page and as a PDF made here with reportlab."""

import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _

from school.credits import service as credits
from school.learning.service import completed_lessons


def source_names() -> dict[str, str]:
    """How each ledger source reads to a member."""
    return {
        "lesson": _("Lesson study"),
        "course": _("Course"),
        "offline": _("Offline party lesson"),
        "daily_quiz": _("Daily quiz"),
        "manual": _("Manual adjustment"),
        "reversal": _("Correction"),
    }


def local_day(moment: datetime) -> date:
    """The site's local calendar day of a stored (naive UTC) time."""
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    return moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).date()


@dataclass
class StudyRecord:
    year: int
    years: list[int]
    lessons: list  # [(Lesson, LessonProgress)], newest first
    entries: list  # [CreditEntry], newest first
    total: Decimal
    quota: Decimal


def parse_year(raw, default: int) -> int:
    """A year from the query string; anything odd (or absurd) becomes the default."""
    try:
        year = int(raw)
    except (TypeError, ValueError):
        return default
    return year if 2000 <= year <= default + 1 else default


def study_record(user, year: int) -> StudyRecord:
    """A user's record for one study year."""
    years = credits.years(user.id)
    if year not in years:
        years = sorted({*years, year}, reverse=True)
    return StudyRecord(
        year=year,
        years=years,
        lessons=completed_lessons(user.id, year),
        entries=credits.entries(user.id, year),
        total=credits.year_total(user.id, year),
        quota=credits.quota_for(user),
    )


def _hours(value) -> str:
    from school.formatting import hours

    return hours(value)


def record_pdf(user, record: StudyRecord) -> bytes:
    """The record as an A4 PDF; Chinese is set in the CID font STSong-Light (no font files)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "STSong-Light"
    pdfmetrics.registerFont(UnicodeCIDFont(font))
    body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=15, wordWrap="CJK")
    small = ParagraphStyle("small", parent=body, fontSize=9, leading=13, textColor=colors.HexColor("#555555"))
    title = ParagraphStyle("title", parent=body, fontSize=18, leading=26, spaceAfter=4)
    heading = ParagraphStyle("heading", parent=body, fontSize=13, leading=20, spaceBefore=10, spaceAfter=4)

    def p(text, style=body):
        from xml.sax.saxutils import escape  # nosec B406 # escapes text for reportlab; parses no XML

        return Paragraph(escape(str(text)), style)

    def table(header, rows, widths):
        data = [[p(h, small) for h in header]] + [[p(c) for c in row] for row in rows]
        t = Table(data, colWidths=widths, repeatRows=1)
        t.setStyle(
            TableStyle(
                [
                    ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor("#cccccc")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f3eeee")),
                ]
            )
        )
        return t

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=_("Study record %(year)d", year=record.year),
        author=user.display_name,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
    )
    width = A4[0] - 36 * mm
    story = [
        p(_("Study record %(year)d", year=record.year), title),
        p(" · ".join(x for x in (user.display_name, user.home_org.name if user.home_org else "") if x)),
        p(_("Printed on %(date)s", date=credits.local_now().date().isoformat()), small),
        Spacer(1, 4 * mm),
        p(
            _(
                "Study hours: %(total)s of the yearly %(quota)s",
                total=_hours(record.total),
                quota=_hours(record.quota),
            ),
            heading,
        ),
        p(_("Lessons completed: %(n)d", n=len(record.lessons))),
        p(_("Lessons completed"), heading),
    ]
    if record.lessons:
        rows = [
            (
                local_day(progress.completed_at).isoformat(),
                f"{lesson.course.title} · {lesson.title}",
                _hours(lesson.credit_hours),
            )
            for lesson, progress in record.lessons
        ]
        story.append(
            table((_("Day"), _("Lesson"), _("Study hours")), rows, (26 * mm, width - 48 * mm, 22 * mm))
        )
    else:
        story.append(p(_("No lessons completed this year."), small))
    story.append(p(_("Study hours ledger"), heading))
    if record.entries:
        names = source_names()
        rows = []
        for entry in record.entries:
            what = entry.title
            if entry.reason:
                what = f"{what} ({entry.reason})" if what else entry.reason
            rows.append(
                (
                    local_day(entry.created_at).isoformat(),
                    names.get(entry.source, entry.source),
                    what,
                    ("+" if entry.amount > 0 else "") + _hours(entry.amount),
                )
            )
        story.append(
            table(
                (_("Day"), _("Source"), _("What"), _("Study hours")),
                rows,
                (26 * mm, 26 * mm, width - 70 * mm, 18 * mm),
            )
        )
    else:
        story.append(p(_("No study hours this year."), small))
    doc.build(story)
    return buffer.getvalue()
