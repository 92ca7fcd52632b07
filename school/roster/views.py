"""Organizer pages for members: import (template, dry run, apply), and one member at a time (add,
edit, deactivate, transfer, reset password)."""

import csv
import io

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from school import access, db
from school.accounts import two_factor
from school.audit import service as audit
from school.credits.service import quota_for, study_year, year_total
from school.errors import Invalid, commit_or_explain
from school.learning.activity import last_study_at
from school.orgs.service import ancestors, get_org, org_options
from school.roster import importer, members, service
from school.roster.forms import MemberForm, TransferForm

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
    audit.record(
        "member.import", org_id=org.id, target=org, details={"file": meta["filename"], **vars(summary)}
    )
    db.session.commit()
    service.delete_upload(folder, token)
    return render_template("roster/done.html", org=org, summary=summary)


# --- one member at a time -----------------------------------------------------------------------


def _branch_choices(form_field) -> None:
    form_field.choices = [SelectChoice(o.id, o.label) for o in org_options(current_user, branches_only=True)]


def _member_input(form: MemberForm, org_id: int | None = None) -> members.MemberInput:
    return members.MemberInput(
        name=form.name.data or "",
        phone=form.phone.data or "",
        org_id=org_id,
        member_status=form.member_status.data or None,
        employment=form.employment.data or None,
        floating=bool(form.floating.data),
    )


@bp.route("/members/new", methods=["GET", "POST"])
@access.organizer
def new_member():
    """Add one member to a branch of my subtree (?org_id= preselects the branch)."""
    form = MemberForm()
    _branch_choices(form.org_id)
    status = 200
    if request.method == "GET":
        preset = request.args.get("org_id", "")
        if preset:  # a foreign or malformed preset is refused, not silently dropped
            access.require(preset.isdigit() and access.may_administer_org(current_user, int(preset)))
            form.org_id.data = int(preset)
    else:
        saved, member = commit_or_explain(
            lambda: members.add_member(current_user, _member_input(form, form.org_id.data))
        )
        if not saved:
            status = 400
        else:
            flash(
                _(
                    "%(name)s has been added. Reset their password to give them a first one.",
                    name=member.display_name,
                ),
                "info",
            )
            return redirect(url_for("roster.member", user_id=member.id))
    return render_template("roster/member_form.html", form=form, member=None), status


@bp.get("/members/<int:user_id>")
@access.organizer
def member(user_id: int):
    """One member: details, categories, branch trail, transfers, this year's 学时 and actions."""
    person = members.get_member(current_user, user_id)
    year = study_year()
    return render_template(
        "roster/member.html",
        member=person,
        trail=ancestors(person.home_org),
        transfers=members.transfers_of(person),
        year=year,
        hours=year_total(person.id, year),
        quota=quota_for(person),
        last_study=last_study_at(person.id),
        may_manage=members.may_manage(current_user, person),
        two_factor_on=two_factor.is_enabled(person),
    )


@bp.route("/members/<int:user_id>/edit", methods=["GET", "POST"])
@access.organizer
def edit_member(user_id: int):
    """Change a member's name, phone and categories."""
    person = members.get_member(current_user, user_id)
    members.check_may_manage(current_user, person)
    if request.method == "POST":
        form = MemberForm()
    else:
        form = MemberForm(
            data={
                "name": person.display_name,
                "phone": person.phone or "",
                "member_status": person.member_status or "",
                "employment": person.employment or "",
                "floating": person.floating,
            }
        )
    status = 200
    if request.method == "POST":
        saved, _result = commit_or_explain(
            lambda: members.update_member(current_user, person, _member_input(form))
        )
        if not saved:
            status = 400
            person = members.get_member(current_user, user_id)
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("roster.member", user_id=person.id))
    return render_template("roster/member_form.html", form=form, member=person), status


@bp.post("/members/<int:user_id>/deactivate", defaults={"active": False})
@bp.post("/members/<int:user_id>/reactivate", defaults={"active": True})
@access.organizer
def set_active(user_id: int, active: bool):
    """Deactivate a member (signed out at their next request) or reactivate them."""
    person = members.get_member(current_user, user_id)
    saved, _result = commit_or_explain(lambda: members.set_member_active(current_user, person, active))
    if saved:
        if active:
            flash(_("%(name)s is active again.", name=person.display_name), "info")
        else:
            flash(_("%(name)s has been deactivated and signed out.", name=person.display_name), "info")
    return redirect(url_for("roster.member", user_id=user_id))


@bp.route("/members/<int:user_id>/transfer", methods=["GET", "POST"])
@access.organizer
def transfer(user_id: int):
    """Transfer a member to another branch; their study record and 学时 go with them."""
    person = members.get_member(current_user, user_id)
    members.check_may_manage(current_user, person)
    form = TransferForm()
    status = 200
    if request.method == "POST":
        saved, _result = commit_or_explain(
            lambda: members.transfer_member(
                current_user, person, form.org_id.data, form.reason.data, db.utcnow()
            )
        )
        if not saved:
            status = 400
            person = members.get_member(current_user, user_id)
        else:
            flash(
                _("%(name)s now belongs to %(org)s.", name=person.display_name, org=person.home_org.name),
                "info",
            )
            return redirect(url_for("roster.member", user_id=user_id))
    _branch_choices(form.org_id)
    form.org_id.choices = [c for c in form.org_id.choices if c.value != person.home_org_id]
    return render_template("roster/transfer.html", form=form, member=person), status


@bp.post("/members/<int:user_id>/reset-password")
@access.organizer
def reset_password(user_id: int):
    """Give a member a temporary password, shown once on this page (never flashed into the cookie)."""
    person = members.get_member(current_user, user_id)
    password = members.reset_password(current_user, person)
    db.session.commit()
    return render_template("roster/password.html", member=person, password=password)


@bp.post("/members/<int:user_id>/reset-two-factor")
@access.organizer
def reset_two_factor(user_id: int):
    """Turn off a member's two-factor sign-in (lost phone) and sign them out everywhere."""
    person = members.get_member(current_user, user_id)
    members.check_may_manage(current_user, person)  # organizers never reset an admin's
    two_factor.reset(person, current_user._get_current_object())
    db.session.commit()
    flash(
        _(
            "Two-factor sign-in of %(name)s has been reset. They sign in with their password only.",
            name=person.display_name,
        ),
        "info",
    )
    return redirect(url_for("roster.member", user_id=user_id))
