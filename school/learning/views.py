"""Members' study pages: 学习档案 (study record)."""

from urllib.parse import quote

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from school import access
from school.credits.service import study_year
from school.learning import record as records

bp = Blueprint("learning", __name__)


@bp.get("/me/record")
@access.signed_in
def record():
    """My study record for a year: completed lessons, 学时 entries, total against the quota."""
    year = records.parse_year(request.args.get("year"), study_year())
    return render_template(
        "learning/record.html",
        record=records.study_record(current_user, year),
        source_names=records.source_names(),
        local_day=records.local_day,
    )


@bp.get("/me/record.pdf")
@access.signed_in
def record_pdf():
    """My study record for a year as a PDF to download or print."""
    year = records.parse_year(request.args.get("year"), study_year())
    data = records.record_pdf(current_user, records.study_record(current_user, year))
    # Not send_file: it would mark this personal document cacheable for a year.
    name = quote(_("Study record %(year)d", year=year) + ".pdf")
    disposition = f"attachment; filename=\"study-record-{year}.pdf\"; filename*=UTF-8''{name}"
    return data, 200, {"Content-Type": "application/pdf", "Content-Disposition": disposition}
