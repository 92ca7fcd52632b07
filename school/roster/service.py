"""Member import: load what a plan needs in bulk, keep uploads between dry run and apply, and apply
a plan all-or-nothing in one transaction."""

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask_babel import gettext as _

from school import db
from school.accounts.models import RoleGrant, User
from school.accounts.service import hash_password
from school.errors import Conflict, Forbidden, Invalid, NotFound
from school.orgs.models import Org
from school.orgs.service import subtree_ids, visible_org_ids
from school.roster import importer

CHUNK = 500  # ids/phones per IN (...): well under SQLite's and PostgreSQL's parameter limits
TOKEN_LENGTH = 24
UPLOAD_EXPIRY_SECONDS = 24 * 3600


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_context(organizer: User, org: Org, rows: list[importer.SourceRow]) -> importer.Context:
    """What planning rows for org needs, in a handful of queries whatever the row count."""
    inside = set(db.session.scalars(subtree_ids(org.id)))
    keys = sorted(importer.branch_keys(rows))
    orgs: dict[int, Org] = {}
    for chunk in _chunks(sorted(inside)):
        orgs.update((o.id, o) for o in db.session.scalars(sa.select(Org).where(Org.id.in_(chunk))))
    for chunk in _chunks(keys):
        stmt = sa.select(Org).where(sa.or_(Org.code.in_(chunk), Org.name.in_(chunk)))
        orgs.update((o.id, o) for o in db.session.scalars(stmt))
    by_code: dict[str, importer.Branch] = {}
    by_name: dict[str, list[importer.Branch]] = {}
    for o in orgs.values():
        branch = importer.Branch(o.id, o.name, o.code, o.is_branch, o.id in inside, o.closed_at is not None)
        if o.code:
            by_code[o.code] = branch
        by_name.setdefault(o.name, []).append(branch)

    users: dict[str, importer.Existing] = {}
    columns = (User.id, User.phone, User.display_name, User.home_org_id, User.member_status, User.employment)
    found = []
    for chunk in _chunks(sorted(importer.phones_of(rows))):
        found += db.session.execute(sa.select(*columns, User.floating).where(User.phone.in_(chunk))).all()
    outside_orgs = sorted({r.home_org_id for r in found if r.home_org_id is not None} - inside)
    mine = set()
    visible = visible_org_ids(organizer)
    for chunk in _chunks(outside_orgs):
        stmt = sa.select(Org.id).where(Org.id.in_(chunk))
        mine.update(db.session.scalars(stmt if visible is None else stmt.where(Org.id.in_(visible))))
    for r in found:
        users[r.phone] = importer.Existing(
            r.id,
            r.display_name,
            r.home_org_id,
            r.member_status,
            r.employment,
            bool(r.floating),
            r.home_org_id in inside,
            r.home_org_id in inside or r.home_org_id in mine,
        )
    return importer.Context(by_code, by_name, users, {o.id: o.name for o in orgs.values()})


def make_plan(organizer: User, org: Org, data: bytes, filename: str, config: dict) -> importer.Plan:
    """Read an import file and plan it against the database as it is now."""
    if len(data) > config["IMPORT_MAX_BYTES"]:
        mb = config["IMPORT_MAX_BYTES"] / 1024 / 1024
        raise Invalid(_("The file is larger than %(mb)s MB.", mb=f"{mb:g}"))
    rows = importer.read_table(data, filename, config["IMPORT_MAX_ROWS"])
    return importer.plan(rows, load_context(organizer, org, rows))


@dataclass
class Summary:
    created: int
    updated: int
    unchanged: int
    skipped: int


def apply_plan(plan: importer.Plan, skip_rejected: bool) -> Summary:
    """Write a plan in the current transaction; refused whole when it has rejects and skip is off.

    The caller commits; any failure (including a phone taken meanwhile) rolls everything back.
    """
    rejected = plan.count("reject")
    if rejected and not skip_rejected:
        raise Invalid(
            _(
                "%(n)d rows were rejected, so nothing was imported. Fix them, or choose to skip them.",
                n=rejected,
            )
        )
    creates = [r for r in plan.rows if r.action == "create"]
    updates = [r for r in plan.rows if r.action == "update"]
    # Nobody is told this password: the account waits for its owner to be given one (must change).
    # One hash per import, not per member: scrypt per row would take minutes for 5,000 rows.
    password_hash = hash_password(secrets.token_urlsafe(32)) if creates else None
    try:
        for chunk in _chunks(creates):
            users = [
                User(
                    phone=r.phone,
                    password_hash=password_hash,
                    must_change_password=True,
                    floating=r.values.get("floating", False),
                    **{k: v for k, v in r.values.items() if k != "floating"},
                )
                for r in chunk
            ]
            db.session.add_all(users)
            db.session.flush()
            db.session.execute(
                sa.insert(RoleGrant), [{"user_id": u.id, "role": "member", "org_id": None} for u in users]
            )
        for chunk in _chunks(updates):
            db.session.execute(
                sa.update(User),
                [{"id": r.user_id, **r.values} for r in chunk],
                execution_options={"synchronize_session": False},
            )
        db.session.flush()
    except sa.exc.IntegrityError as error:
        db.session.rollback()
        raise Conflict(
            _("Another change to these members happened meanwhile; nothing was imported.")
        ) from error
    return Summary(len(creates), len(updates), plan.count("unchanged"), rejected)


# --- uploads kept between the dry run and apply -------------------------------------------------


def _folder(instance_dir: str) -> Path:
    path = Path(instance_dir) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(
    instance_dir: str, data: bytes, filename: str, organizer_id: int, org_id: int, digest: str
) -> str:
    """Keep an uploaded file for its apply step; returns its token, bound to organizer and org."""
    token = secrets.token_urlsafe(TOKEN_LENGTH)
    folder = _folder(instance_dir)
    (folder / f"{token}.dat").write_bytes(data)
    meta = {
        "organizer_id": organizer_id,
        "org_id": org_id,
        "filename": filename,
        "digest": digest,
        "saved_at": time.time(),
    }
    (folder / f"{token}.json").write_text(json.dumps(meta))
    _purge_old(folder)
    return token


def load_upload(instance_dir: str, token: str, organizer_id: int, org_id: int) -> tuple[bytes, dict]:
    """The file and its record for token, only for the organizer and org it was uploaded for."""
    if not (token.replace("-", "").replace("_", "").isalnum() and len(token) <= 64):
        raise NotFound()
    folder = _folder(instance_dir)
    try:
        meta = json.loads((folder / f"{token}.json").read_text())
        data = (folder / f"{token}.dat").read_bytes()
    except (OSError, ValueError) as error:
        raise NotFound(_("This upload is no longer available. Please upload the file again.")) from error
    if meta.get("organizer_id") != organizer_id or meta.get("org_id") != org_id:
        raise Forbidden()
    return data, meta


def delete_upload(instance_dir: str, token: str) -> None:
    """Forget an upload once applied."""
    folder = _folder(instance_dir)
    for suffix in (".dat", ".json"):
        (folder / f"{token}{suffix}").unlink(missing_ok=True)


def _purge_old(folder: Path) -> None:
    # Dry runs that were never applied: dropped after a day, checked on each new upload.
    limit = time.time() - UPLOAD_EXPIRY_SECONDS
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)
        except OSError:
            pass


def update_digest(instance_dir: str, token: str, meta: dict, digest: str) -> None:
    """Record the plan the organizer is now shown (after data changed since the dry run)."""
    meta = {**meta, "digest": digest}
    (_folder(instance_dir) / f"{token}.json").write_text(json.dumps(meta))
