"""Reading an import file and planning it: pure functions, no database, no request.

`read_table(data, filename, max_rows)` turns XLSX/CSV bytes into data rows (or raises Invalid for a
whole-file problem); `plan(rows, context)` decides per row: create, update, unchanged or reject,
with the reason in the user's language. What the plan needs from the database comes in `Context`,
loaded in bulk by roster.service.
"""

import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field

from flask_babel import gettext as _

from school.accounts.service import normalize_phone
from school.errors import Invalid

# The template's columns (data, not UI text: organisers' spreadsheets carry these headers).
NAME, PHONE, BRANCH, STATUS, EMPLOYMENT, FLOATING = (
    "姓名",
    "手机号",
    "所在支部",
    "党员类别",
    "在职情况",
    "流动党员",
)
HEADERS = (NAME, PHONE, BRANCH, STATUS, EMPLOYMENT, FLOATING)
STATUS_VALUES = {"正式党员": "full", "正式": "full", "预备党员": "probationary", "预备": "probationary"}
EMPLOYMENT_VALUES = {"在职": "working", "离退休": "retired", "退休": "retired", "离休": "retired"}
FLOATING_VALUES = {"是": True, "否": False}
TEMPLATE_EXAMPLE = ("张三", "13800000000", "支部编码或支部名称", "正式党员", "在职", "否")
NAME_MAX = 64
CELL_MAX = 200  # no legitimate cell of this sheet is longer; longer ones are refused per row
SHOWN_MAX = 40  # what the dry run echoes of a cell
XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"
# An XLSX is a zip: its unpacked size is bounded too, so a small file cannot unpack into gigabytes.
UNPACKED_FACTOR = 10


class Formula(str):
    """A cell that held a formula: refused, never evaluated."""


@dataclass
class SourceRow:
    line: int  # row number as the spreadsheet shows it
    cells: dict[str, object]


@dataclass
class PlanRow:
    line: int
    name: str
    phone: str
    branch: str
    action: str  # create | update | unchanged | reject
    reason: str = ""
    changes: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict)  # what apply writes (create/update only)
    user_id: int | None = None


@dataclass
class Plan:
    rows: list[PlanRow]

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    @property
    def counts(self) -> dict[str, int]:
        return {a: self.count(a) for a in ("create", "update", "unchanged", "reject")}

    def digest(self) -> str:
        """Fingerprint of what the organizer was shown, to refuse applying a different plan."""
        shape = [(r.line, r.action, r.user_id, sorted(r.values.items())) for r in self.rows]
        return hashlib.sha256(json.dumps(shape, ensure_ascii=False, default=str).encode()).hexdigest()


@dataclass
class Branch:
    id: int
    name: str
    code: str | None
    is_branch: bool
    in_subtree: bool
    closed: bool = False


@dataclass
class Existing:
    id: int
    display_name: str
    home_org_id: int | None
    member_status: str | None
    employment: str | None
    floating: bool
    in_subtree: bool  # home org inside the org being imported into
    in_my_scope: bool  # home org inside anything the organizer administers


@dataclass
class Context:
    orgs_by_code: dict[str, Branch]
    orgs_by_name: dict[str, list[Branch]]
    users_by_phone: dict[str, Existing]
    org_names: dict[int, str]


# --- reading the file --------------------------------------------------------------------


def read_table(data: bytes, filename: str, max_rows: int) -> list[SourceRow]:
    """Data rows of an XLSX or CSV import file, keyed by header; Invalid for whole-file problems."""
    if not data or not data.strip():
        raise Invalid(_("The file is empty."))
    if data.startswith(XLS_MAGIC):
        raise Invalid(_("Old .xls files cannot be read. Please save the sheet as .xlsx or CSV."))
    if data.startswith(XLSX_MAGIC):
        table = _xlsx_rows(data)
    elif (filename or "").lower().endswith((".xlsx", ".xlsm")):
        raise Invalid(_("This file is not a valid XLSX workbook."))
    else:
        table = _csv_rows(data)
    return _keyed(table, max_rows)


def _xlsx_rows(data: bytes):
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > UNPACKED_FACTOR * max(len(data), 1024 * 1024):
            raise Invalid(_("This workbook unpacks to far more data than a member list holds."))
        # data_only=False: a formula cell keeps its formula text, so it can be refused.
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Invalid:
        raise
    except Exception as error:  # openpyxl raises many kinds on a broken file
        raise Invalid(_("This file is not a valid XLSX workbook.")) from error
    try:
        sheet = book.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(), start=1):
            yield number, [_xlsx_value(cell) for cell in row]
    finally:
        book.close()


def _xlsx_value(cell) -> object:
    value = getattr(cell, "value", None)
    if getattr(cell, "data_type", None) == "f" or (isinstance(value, str) and value.startswith("=")):
        return Formula(str(value))
    return value


def _decode(data: bytes) -> str:
    """UTF-8 (BOM allowed) or GB18030, decided per line so a mixed file is caught, not garbled."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    utf8 = other = 0
    for line in data.splitlines():
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8 += 1
        except UnicodeDecodeError:
            other += 1
    if utf8 and other:
        raise Invalid(_("The file mixes text encodings. Please save it again as UTF-8 or GBK."))
    try:
        return data.decode("utf-8" if not other else "gb18030")
    except UnicodeDecodeError as error:
        raise Invalid(
            _("The file's text encoding cannot be read. Please save it as UTF-8 or GBK.")
        ) from error


def _csv_rows(data: bytes):
    text = _decode(data)
    if "\x00" in text:
        raise Invalid(_("This file is not a CSV or XLSX file."))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for number, row in enumerate(reader, start=1):
            yield number, [Formula(c) if c.startswith("=") else c for c in row]
    except csv.Error as error:
        raise Invalid(
            _(
                "Row %(row)d of the CSV file cannot be read (a cell too long or an unclosed quote).",
                row=number + 1,
            )
        ) from error


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # phones typed into Excel come back as numbers
    return str(value).strip()


def _keyed(table, max_rows: int) -> list[SourceRow]:
    header: list[str] | None = None
    rows: list[SourceRow] = []
    for number, values in table:
        if header is None:
            if not any(_text(v) for v in values):
                continue
            header = [_text(v) for v in values]
            missing = [h for h in HEADERS if h not in header]
            if missing:
                raise Invalid(
                    _(
                        "The first row must hold the template's column headers; missing: %(missing)s.",
                        missing="、".join(missing),
                    )
                )
            if len({h for h in header if h}) != len([h for h in header if h]):
                raise Invalid(_("A column header appears twice in the first row."))
            continue
        if not any(_text(v) for v in values):
            continue
        if len(rows) >= max_rows:
            raise Invalid(_("The file has more than %(n)d rows. Please split it.", n=max_rows))
        cells = {h: (values[i] if i < len(values) else None) for i, h in enumerate(header) if h in HEADERS}
        rows.append(SourceRow(number, cells))
    if header is None:
        raise Invalid(_("The file is empty."))
    if not rows:
        raise Invalid(_("The file has column headers but no member rows."))
    return rows


# --- planning -----------------------------------------------------------------------------


def _shown(value: object) -> str:
    text = _text(value)
    return text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX] + "…"


def phones_of(rows: list[SourceRow]) -> set[str]:
    """The valid normalised phones in the rows, for loading existing accounts in bulk."""
    out = set()
    for row in rows:
        value = row.cells.get(PHONE)
        if not isinstance(value, Formula):
            phone = normalize_phone(_text(value)[:CELL_MAX])
            if phone:
                out.add(phone)
    return out


def branch_keys(rows: list[SourceRow]) -> set[str]:
    """The branch codes/names the rows refer to."""
    return {
        _text(r.cells.get(BRANCH))
        for r in rows
        if not isinstance(r.cells.get(BRANCH), Formula) and 0 < len(_text(r.cells.get(BRANCH))) <= CELL_MAX
    }


def plan(rows: list[SourceRow], context: Context) -> Plan:
    """Decide each row: create, update (listing what changes), unchanged, or reject with why."""
    seen: dict[str, list[int]] = {}
    for row in rows:
        phone = normalize_phone(_text(row.cells.get(PHONE))[:CELL_MAX])
        if phone and not isinstance(row.cells.get(PHONE), Formula):
            seen.setdefault(phone, []).append(row.line)
    return Plan([_plan_row(row, context, seen) for row in rows])


def _reject(row: PlanRow, reason: str) -> PlanRow:
    row.action, row.reason, row.values, row.changes = "reject", reason, {}, []
    return row


def _plan_row(source: SourceRow, context: Context, seen: dict[str, list[int]]) -> PlanRow:
    cells = source.cells
    out = PlanRow(
        source.line, _shown(cells.get(NAME)), _shown(cells.get(PHONE)), _shown(cells.get(BRANCH)), "reject"
    )
    formulas = [h for h in HEADERS if isinstance(cells.get(h), Formula)]
    if formulas:
        return _reject(out, _("Formulas are not accepted (column %(col)s).", col="、".join(formulas)))
    long = [h for h in HEADERS if len(_text(cells.get(h))) > CELL_MAX]
    if long:
        return _reject(out, _("A cell is too long (column %(col)s).", col="、".join(long)))
    name = _text(cells.get(NAME))
    if not name:
        return _reject(out, _("The name is missing."))
    if len(name) > NAME_MAX:
        return _reject(out, _("The name has more than %(n)d characters.", n=NAME_MAX))
    raw_phone = _text(cells.get(PHONE))
    if not raw_phone:
        return _reject(out, _("The phone number is missing."))
    phone = normalize_phone(raw_phone)
    if not phone:
        return _reject(out, _("The phone number is not an 11-digit mainland mobile number."))
    out.phone = phone
    if len(seen.get(phone, ())) > 1:
        lines = "、".join(str(n) for n in seen[phone])
        return _reject(out, _("The same phone number appears in rows %(rows)s.", rows=lines))
    branch, why = _branch(_text(cells.get(BRANCH)), context)
    if branch is None:
        return _reject(out, why)
    values = {"display_name": name, "home_org_id": branch.id}
    for column, mapping in (
        (STATUS, STATUS_VALUES),
        (EMPLOYMENT, EMPLOYMENT_VALUES),
        (FLOATING, FLOATING_VALUES),
    ):
        text = _text(cells.get(column))
        if not text:
            continue  # blank: new members get none, existing ones keep theirs
        if text not in mapping:
            allowed = "/".join(k for k in mapping if len(k) > 1 or mapping is FLOATING_VALUES)
            return _reject(out, _("%(col)s must be one of %(allowed)s.", col=column, allowed=allowed))
        key = {STATUS: "member_status", EMPLOYMENT: "employment", FLOATING: "floating"}[column]
        values[key] = mapping[text]
    existing = context.users_by_phone.get(phone)
    if existing is None:
        out.action, out.values = "create", values
        return out
    if not existing.in_subtree:
        if existing.in_my_scope:
            return _reject(out, _("This phone number belongs to a member outside this organisation."))
        return _reject(
            out, _("This phone number belongs to a member outside the organisations you administer.")
        )
    out.user_id = existing.id
    out.changes = _changes(existing, values, context)
    out.values = {k: v for k, v in values.items() if getattr(existing, k) != v}
    out.action = "update" if out.values else "unchanged"
    return out


def _branch(key: str, context: Context) -> tuple[Branch | None, str]:
    if not key:
        return None, _("The branch is missing.")
    org = context.orgs_by_code.get(key)
    if org is None:
        named = context.orgs_by_name.get(key, [])
        inside = [o for o in named if o.in_subtree]
        if len(inside) > 1:
            return None, _("Several organisations have this name; please use the branch code.")
        org = inside[0] if inside else (named[0] if named else None)
    if org is None:
        return None, _("No branch has this code or name.")
    if not org.in_subtree:
        return None, _("This branch is outside the organisation you are importing into.")
    if not org.is_branch:
        return None, _("Members must belong to a branch, not to a higher organisation.")
    if org.closed:
        return None, _("This branch is closed; choose an open branch.")
    return org, ""


def _changes(existing: Existing, values: dict, context: Context) -> list[str]:
    status = {"full": "正式党员", "probationary": "预备党员", None: "—"}
    work = {"working": "在职", "retired": "离退休", None: "—"}
    flag = {True: "是", False: "否"}
    shown = {
        "display_name": (NAME, lambda v: v),
        "home_org_id": (BRANCH, lambda v: context.org_names.get(v, "—")),
        "member_status": (STATUS, status.get),
        "employment": (EMPLOYMENT, work.get),
        "floating": (FLOATING, flag.get),
    }
    out = []
    for key, value in values.items():
        old = getattr(existing, key)
        if old != value:
            label, fmt = shown[key]
            out.append(f"{label}：{fmt(old)} → {fmt(value)}")
    return out


def template_rows() -> list[tuple[str, ...]]:
    """Header and one example row of the downloadable template."""
    return [HEADERS, TEMPLATE_EXAMPLE]
