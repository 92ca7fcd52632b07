"""Organizer pages for importing members: template, dry run, apply."""

import csv
import io

from flask import Blueprint, Response, current_app, flash, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from school import access, db
from school.errors import Invalid
from school.orgs.service import get_org
from school.roster import importer, service

bp = Blueprint("roster", __name__)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _org(org_id: int):
    access.require(access.may_administer_org(current_user, org_id))
    return get_org(org_id)


@bp.get("/orgs/<int:org_id>/import")
@access.organizer
def upload_form(org_id: int):
    """The upload form with template downloads."""
    return render_template("roster/upload.html", org=_org(org_id), headers=importer.HEADERS)


@bp.get("/orgs/<int:org_id>/import/template.xlsx", defaults={"fmt": "xlsx"})
@bp.get("/orgs/<int:org_id>/import/template.csv", defaults={"fmt": "csv"})
@access.organizer
def template(org_id: int, fmt: str):
    """The import template as XLSX or CSV (UTF-8 with BOM, which Excel opens correctly)."""
    _org(org_id)
    rows = importer.template_rows()
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        body, mimetype = ("\ufeff" + out.getvalue()).encode("utf-8"), "text/csv"
    else:
        import openpyxl

        book = openpyxl.Workbook()
        sheet = book.active
        for row in rows:
            sheet.append(list(row))
        for cell in sheet["B"]:
            cell.number_format = "@"  # phones as text, so Excel keeps every digit
        buffer = io.BytesIO()
        book.save(buffer)
        body, mimetype = buffer.getvalue(), XLSX_TYPE
    disposition = f"attachment; filename=member-import.{fmt}"
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": disposition})


@bp.post("/orgs/<int:org_id>/import")
@access.organizer
def dry_run(org_id: int):
    """Read the uploaded file and show, row by row, what an import would do; nothing is written."""
    org = _org(org_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise Invalid(_("Please choose a file to import."))
    limit = current_app.config["IMPORT_MAX_BYTES"]
    data = upload.stream.read(limit + 1)
    plan = service.make_plan(current_user, org, data, upload.filename, current_app.config)
    token = service.save_upload(
        current_app.instance_path, data, upload.filename, current_user.id, org.id, plan.digest()
    )
    return render_template("roster/plan.html", org=org, plan=plan, token=token, filename=upload.filename)


@bp.post("/orgs/<int:org_id>/import/<token>/apply")
@access.organizer
def apply(org_id: int, token: str):
    """Re-read the saved file, re-plan, and apply it all-or-nothing."""
    org = _org(org_id)
    folder = current_app.instance_path
    data, meta = service.load_upload(folder, token, current_user.id, org.id)
    plan = service.make_plan(current_user, org, data, meta["filename"], current_app.config)
    if plan.digest() != meta.get("digest"):
        # Someone changed members since the preview: show the new plan instead of applying it.
        db.session.rollback()
        service.update_digest(folder, token, meta, plan.digest())
        flash(
            _("Members changed since the preview. Please check this new preview and import again."), "error"
        )
        return render_template("roster/plan.html", org=org, plan=plan, token=token, filename=meta["filename"])
    summary = service.apply_plan(plan, skip_rejected=request.form.get("skip_rejected") == "1")
    db.session.commit()
    service.delete_upload(folder, token)
    return render_template("roster/done.html", org=org, summary=summary)
