import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from school import db
from school.accounts.models import RoleGrant, User
from school.orgs.models import Org
from tests.conftest import sign_in

DEMO = Path(__file__).resolve().parents[2] / "content" / "demo"


@pytest.fixture()
def people_only(tmp_path):
    """The demo's orgs and people without its courses (those transcode media: see test_courses)."""
    for name in ("orgs.yaml", "people.yaml", "members.csv"):
        shutil.copyfile(DEMO / name, tmp_path / name)
    return tmp_path


def counts() -> tuple[int, int, int]:
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model)) for model in (Org, User, RoleGrant)
    )


def test_demo_content_loads_and_a_second_load_changes_nothing(app, people_only):
    runner = app.test_cli_runner()
    first = runner.invoke(app.cli, ["content", "load", str(people_only)])
    assert first.exit_code == 0, first.output
    assert "orgs: 15 created" in first.output
    after_first = counts()
    second = runner.invoke(app.cli, ["content", "load", str(people_only)])
    assert "orgs: 0 created, 0 updated, 15 unchanged" in second.output
    assert "people: 0 created, 0 updated" in second.output
    assert counts() == after_first
    orgs, users, _grants = after_first
    assert orgs == 15 and 190 <= users <= 220


def test_demo_accounts_sign_in_to_their_role_home(app, client, people_only):
    app.test_cli_runner().invoke(app.cli, ["content", "load", str(people_only)])
    for login, expected in (
        ("member1", "我的学习"),
        ("org-district", "我管理的组织"),
        ("lecturer1", "我的课程"),
        ("admin", "我管理的组织"),
    ):
        client.post("/sign-out")  # (no CSRF: refused, so use a fresh client instead)
        fresh = app.test_client()
        sign_in(fresh, login, "dangxiao2026")
        assert expected in fresh.get("/").get_data(as_text=True), login


def test_changed_names_are_updated_and_nothing_is_deleted(app, tmp_path):
    (tmp_path / "orgs.yaml").write_text(
        "- {code: c, name: 市委, kind: city, children: [{code: b, name: 一支部, kind: branch}]}\n",
        encoding="utf-8",
    )
    runner = app.test_cli_runner()
    assert runner.invoke(app.cli, ["content", "load", str(tmp_path)]).exit_code == 0
    (tmp_path / "orgs.yaml").write_text("- {code: c, name: 新市委, kind: city}\n", encoding="utf-8")
    result = runner.invoke(app.cli, ["content", "load", str(tmp_path)])
    assert "orgs: 0 created, 1 updated, 0 unchanged" in result.output
    with app.app_context():
        names = set(db.session.scalars(sa.select(Org.name)))
    assert names == {"新市委", "一支部"}


def test_a_bad_row_loads_nothing_and_says_where(app, tmp_path):
    (tmp_path / "orgs.yaml").write_text(
        "- {code: c, name: 市委, kind: city, children: [{code: b, name: 一支部, kind: branch}]}\n",
        encoding="utf-8",
    )
    (tmp_path / "people.yaml").write_text("password: pass-1234\nusers: []\n", encoding="utf-8")
    (tmp_path / "members.csv").write_text(
        "phone,username,name,branch,status,employment,floating\n"
        "13911112222,,张三,b,正式,在职,否\n"
        "12345,,李四,b,正式,在职,否\n"
        "13911113333,,王五,nowhere,党员,在职,否\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(app.cli, ["content", "load", str(tmp_path)])
    assert result.exit_code != 0
    assert "line 3" in result.output and "12345" in result.output
    assert "line 4" in result.output and "nowhere" in result.output and "党员" in result.output
    with app.app_context():
        assert counts() == (0, 0, 0)


def test_a_gbk_csv_from_excel_is_read(app, tmp_path):
    (tmp_path / "orgs.yaml").write_text("- {code: b, name: 一支部, kind: branch}\n", encoding="utf-8")
    (tmp_path / "people.yaml").write_text("password: pass-1234\n", encoding="utf-8")
    (tmp_path / "members.csv").write_bytes(
        "phone,username,name,branch,status,employment,floating\n13911112222,,欧阳娜娜,b,预备,离退休,是\n".encode(
            "gbk"
        )
    )
    result = app.test_cli_runner().invoke(app.cli, ["content", "load", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.phone == "13911112222"))
        assert (user.display_name, user.member_status, user.employment, user.floating) == (
            "欧阳娜娜",
            "probationary",
            "retired",
            True,
        )
        assert user.must_change_password is True
