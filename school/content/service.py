"""Load a content folder (orgs.yaml, people.yaml, members.csv) into the database, idempotently.

Everything is read and checked first; if any row is wrong nothing is written and every error is
listed with its file and line. Orgs match by code, people by phone then username; nothing is
ever deleted, and passwords are set only when an account is created.
"""

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import yaml

from school import db
from school.accounts import service as accounts
from school.accounts.models import RoleGrant, User
from school.audit import service as audit
from school.errors import Invalid
from school.orgs import service as orgs
from school.orgs.models import KINDS, Org

STATUS = {"正式": "full", "预备": "probationary"}
EMPLOYMENT = {"在职": "working", "离退休": "retired"}
YES_NO = {"是": True, "否": False}
CSV_HEADER = ["phone", "username", "name", "branch", "status", "employment", "floating"]


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)  # (file, created|updated|unchanged) -> n
    errors: list[str] = field(default_factory=list)

    def count(self, source: str, outcome: str) -> None:
        self.counts[(source, outcome)] += 1


def read_text(path: Path) -> str:
    """A text file as UTF-8 (with or without BOM), falling back to GBK as Excel saves it."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gbk")
        except UnicodeDecodeError as error:
            raise Invalid(f"{path.name}: neither UTF-8 nor GBK ({error})") from None


def _walk_orgs(nodes, parent_code, out, errors, seen):
    for node in nodes or []:
        if not isinstance(node, dict):
            errors.append(f"orgs.yaml: entry under {parent_code or 'top'} is not a mapping")
            continue
        code, name, kind = node.get("code"), node.get("name"), node.get("kind")
        where = f"orgs.yaml: {code or name or '?'}"
        if not code or not isinstance(code, str):
            errors.append(f"{where}: code is missing")
        elif code in seen:
            errors.append(f"{where}: code {code} appears twice")
        if not name:
            errors.append(f"{where}: name is missing")
        if kind not in KINDS:
            errors.append(f"{where}: kind must be one of {', '.join(KINDS)}")
        if kind == "branch" and node.get("children"):
            errors.append(f"{where}: a branch cannot have children")
        seen.add(code)
        out.append({"code": code, "name": str(name or "").strip(), "kind": kind, "parent": parent_code})
        _walk_orgs(node.get("children"), code, out, errors, seen)


def _person(raw: dict, where: str, errors: list, known_orgs: dict) -> dict | None:
    person = {
        "phone": str(raw.get("phone") or "").strip() or None,
        "username": str(raw.get("username") or "").strip() or None,
        "name": str(raw.get("name") or "").strip(),
        "branch": str(raw.get("branch") or "").strip() or None,
        "roles": [],
    }
    if person["phone"] and not accounts.normalize_phone(person["phone"]):
        errors.append(f"{where}: {person['phone']} is not a valid mobile number")
    if person["username"] and not accounts.normalize_username(person["username"]):
        errors.append(f"{where}: username {person['username']} is not valid")
    if not (person["phone"] or person["username"]):
        errors.append(f"{where}: a phone or a username is needed")
    if not person["name"]:
        errors.append(f"{where}: name is missing")
    for role in raw.get("roles") or []:
        if isinstance(role, dict) and list(role) == ["organizer"]:
            code = role["organizer"]
            if code not in known_orgs:
                errors.append(f"{where}: organizer of unknown org {code}")
            person["roles"].append(("organizer", code))
        elif role in ("admin", "lecturer", "member"):
            person["roles"].append((role, None))
        else:
            errors.append(f"{where}: unknown role {role!r}")
    if person["branch"]:
        if known_orgs.get(person["branch"]) != "branch":
            errors.append(f"{where}: {person['branch']} is not a known branch")
        for key, words in (("status", STATUS), ("employment", EMPLOYMENT), ("floating", YES_NO)):
            value = str(raw.get(key) or "").strip()
            if value not in words:
                errors.append(f"{where}: {key} must be {' or '.join(words)}, not {value!r}")
            person[key] = words.get(value)
    elif ("member", None) in person["roles"]:
        errors.append(f"{where}: a member needs a branch")
    return person


def read_folder(folder: Path, known_orgs: dict[str, str]) -> tuple[list, list, dict, list]:
    """Parse and check a content folder: (orgs, people, options, errors)."""
    errors: list[str] = []
    org_rows: list[dict] = []
    if (folder / "orgs.yaml").exists():
        _walk_orgs(yaml.safe_load(read_text(folder / "orgs.yaml")), None, org_rows, errors, set())
    known = dict(known_orgs) | {o["code"]: o["kind"] for o in org_rows if o["code"]}

    options = {"password": None, "change_password": True}  # nosec B105 # defaults: no password given
    people: list[dict] = []
    if (folder / "people.yaml").exists():
        data = yaml.safe_load(read_text(folder / "people.yaml")) or {}
        options["password"] = data.get("password")
        options["change_password"] = bool(data.get("change_password", True))
        for i, raw in enumerate(data.get("users") or [], 1):
            people.append(_person(raw, f"people.yaml: user {i}", errors, known))
    if (folder / "members.csv").exists():
        reader = csv.DictReader(io.StringIO(read_text(folder / "members.csv")))
        if [h.strip() for h in reader.fieldnames or []] != CSV_HEADER:
            errors.append(f"members.csv: the header must be {','.join(CSV_HEADER)}")
        else:
            for raw in reader:
                where = f"members.csv: line {reader.line_num}"
                people.append(_person({**raw, "roles": ["member"]}, where, errors, known))
    if people and not options["password"]:
        errors.append("people.yaml: password (the initial password of these accounts) is missing")
    for key in ("phone", "username"):
        values = Counter(p[key] for p in people if p[key])
        errors += [f"{key} {v} appears {n} times" for v, n in values.items() if n > 1]
    return org_rows, people, options, errors


def load_folder(folder: Path, tick: Callable[[str], None] = lambda _s: None) -> Summary:
    """Load a folder into the database (caller commits). Raises Invalid listing every error."""
    existing = dict(db.session.execute(sa.select(Org.code, Org.kind).where(Org.code.is_not(None))).all())
    org_rows, people, options, errors = read_folder(folder, existing)
    if errors:
        raise Invalid("\n".join(errors))
    summary = Summary()
    by_code = {o.code: o for o in db.session.scalars(sa.select(Org).where(Org.code.is_not(None)))}
    for row in org_rows:
        _upsert_org(row, by_code, summary)
        tick("orgs.yaml")
    # One scrypt hash per distinct password of the data set, not one per person: loading 200
    # demo members would otherwise spend most of its time hashing the same public password.
    password_hash = accounts.hash_password(options["password"]) if people else None
    for person in people:
        _upsert_person(person, by_code, password_hash, options["change_password"], summary)
        tick("people")
    return summary


def _upsert_org(row: dict, by_code: dict, summary: Summary) -> None:
    parent = by_code.get(row["parent"]) if row["parent"] else None
    org = by_code.get(row["code"])
    if org is None:
        by_code[row["code"]] = orgs.create_org(row["name"], row["kind"], parent, code=row["code"])
        summary.count("orgs", "created")
        return
    changed = False
    if (org.name, org.kind) != (row["name"], row["kind"]):
        org.name, org.kind, changed = row["name"], row["kind"], True
    if parent is not None and org.parent_id != parent.id:
        orgs.move_org(org, parent)
        changed = True
    summary.count("orgs", "updated" if changed else "unchanged")


def _upsert_person(person, by_code, password_hash, change_password, summary) -> None:
    phone = accounts.normalize_phone(person["phone"]) if person["phone"] else None
    username = person["username"].lower() if person["username"] else None
    user = None
    if phone:
        user = db.session.scalar(sa.select(User).where(User.phone == phone))
    if user is None and username:
        user = db.session.scalar(sa.select(User).where(User.username == username))
    fields = {
        "display_name": person["name"],
        "home_org_id": by_code[person["branch"]].id if person["branch"] else None,
        "member_status": person.get("status"),
        "employment": person.get("employment"),
        "floating": bool(person.get("floating")),
    }
    grants = {(role, by_code[code].id if code else None) for role, code in person["roles"]}
    if user is None:
        user = User(
            phone=phone,
            username=username,
            password_hash=password_hash,
            must_change_password=change_password,
            **fields,
        )
        user.grants = [RoleGrant(role=r, org_id=o) for r, o in sorted(grants, key=str)]
        db.session.add(user)
        db.session.flush()
        for role, org_id in sorted(grants - {("member", None)}, key=str):  # audited: every role but member
            audit.record(
                "role.grant", org_id=org_id, target=user, details={"role": role, "source": "content"}
            )
        summary.count("people", "created")
        return
    changed = False
    for key, value in fields.items():
        if getattr(user, key) != value:
            setattr(user, key, value)
            changed = True
    for role, org_id in sorted(grants - {(g.role, g.org_id) for g in user.grants}, key=str):
        user.grants.append(RoleGrant(role=role, org_id=org_id))
        audit.record("role.grant", org_id=org_id, target=user, details={"role": role, "source": "content"})
        changed = True
    summary.count("people", "updated" if changed else "unchanged")
