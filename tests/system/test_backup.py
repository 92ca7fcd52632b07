"""Backups taken while the site writes, restored into fresh folders; damaged backups refused."""

import json
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from school import create_app, db
from school.courses.models import Course
from school.orgs.models import Org
from school.system import backup
from tests.factories import make_org, make_user


def add_media(app) -> dict[str, bytes]:
    """A course whose cover is a file, plus an unreferenced file and a partial upload."""
    owner = make_user(roles=[("lecturer", None)])
    media = Path(app.config["MEDIA_DIR"])
    files = {"covers/abc.png": b"\x89PNG cover" * 100, "attachments/extra.pdf": b"%PDF-1.4 extra"}
    for name, data in files.items():
        (media / name).parent.mkdir(parents=True, exist_ok=True)
        (media / name).write_bytes(data)
    (media / "uploads").mkdir(parents=True, exist_ok=True)
    (media / "uploads" / "half.part").write_bytes(b"partial")
    db.session.add(Course(title="有封面的课", owner_id=owner.id, state="draft", cover_path="covers/abc.png"))
    db.session.commit()
    return files


class Writer(threading.Thread):
    """Keeps creating organisations through the service until stopped; counts its commits."""

    def __init__(self, app):
        super().__init__(daemon=True)
        self.app, self.stop, self.count, self.error = app, threading.Event(), 0, None
        self.progressed = threading.Condition()

    def run(self):
        try:
            with self.app.app_context():
                while not self.stop.is_set():
                    make_org(f"写入中{self.count}")
                    with self.progressed:
                        self.count += 1
                        self.progressed.notify_all()
        except Exception as error:  # reported by the test
            self.error = error

    def wait_for(self, count: int) -> None:
        with self.progressed:
            assert self.progressed.wait_for(lambda: self.count >= count or self.error, timeout=30)


def max_org_id() -> int:
    return db.session.scalar(sa.select(sa.func.max(Org.id))) or 0


@pytest.fixture()
def fresh(app, tmp_path, monkeypatch):
    """Makes a second app on a fresh instance folder, database and MEDIA_DIR (a scratch PostgreSQL
    database when the tests run on PostgreSQL). The database engine is global, so it is made only
    after the first app is done writing, and the first app's database is bound again after."""
    main_url = app.config["DATABASE_URL"]
    created = []

    def make():
        if main_url.startswith("postgresql"):
            if shutil.which("createdb") is None:
                pytest.skip("PostgreSQL client tools are not on PATH")
            url = sa.make_url(main_url)
            name = f"{url.database}_restore_{uuid.uuid4().hex[:8]}"
            subprocess.run(_pg_cli("createdb", url, name), check=True)  # noqa: S603
            created.append((url, name))
            target_url = url.set(database=name).render_as_string(hide_password=False)
        else:
            target_url = f"sqlite:///{tmp_path / 'fresh' / 'school.db'}"
        monkeypatch.setenv("INSTANCE_DIR", str(tmp_path / "fresh"))
        second = create_app(
            {
                "DATABASE_URL": target_url,
                "MEDIA_DIR": str(tmp_path / "fresh-media"),
                "INDEX_DIR": str(tmp_path / "fresh-index"),
                "TESTING": True,
            }
        )
        with second.app_context():
            db.Base.metadata.create_all(db.engine)  # the site's schema, empty, as after `db upgrade`
        return second

    yield make
    db.session.remove()
    db.configure(main_url)
    for url, name in created:
        subprocess.run(_pg_cli("dropdb", url, name, "--if-exists", "--force"), check=True)  # noqa: S603


def _pg_cli(tool: str, url, name: str, *extra: str) -> list[str]:
    args = [shutil.which(tool), *extra, "--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)]
    return [*args, "--username", url.username or "postgres", name]


def test_backup_during_writes_restores_everything_up_to_its_snapshot(app, fresh, tmp_path, monkeypatch):
    monkeypatch.setattr(backup, "PAGES_PER_STEP", 2)  # many steps, with commits between them
    with app.app_context():
        files = add_media(app)
        for _ in range(20):
            make_org()
    writer = Writer(app)
    writer.start()
    writer.wait_for(3)
    with app.app_context():
        last_before = max_org_id()
    during = {}

    def keep_writing():  # the snapshot is fixed: more commits must not disturb the copy
        during["from"] = writer.count
        writer.wait_for(writer.count + 5)

    dest = tmp_path / "backup"
    with app.app_context():
        manifest = backup.backup(dest, after_snapshot=keep_writing)
    writer.stop.set()
    writer.join(30)
    assert writer.error is None and writer.count >= during["from"] + 5

    assert [f["path"] for f in manifest["media"]["files"]] == sorted(files)
    assert manifest["media"]["missing"] == []
    assert manifest["database"]["tables"]["org"] >= last_before
    assert json.loads((dest / "manifest.json").read_text()) == manifest

    second = fresh()
    with second.app_context():
        summary = backup.restore(dest)
        ids = set(db.session.scalars(sa.select(Org.id)))
        assert set(range(1, last_before + 1)) <= ids
        assert len(ids) == manifest["database"]["tables"]["org"]  # the snapshot, whole
        assert db.session.scalar(sa.select(Course.cover_path)) == "covers/abc.png"
        if db.engine.dialect.name == "sqlite":
            assert db.session.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
    assert summary["media_files"] == 2
    media = Path(second.config["MEDIA_DIR"])
    for name, data in files.items():
        assert (media / name).read_bytes() == data
    assert not (media / "uploads").exists()
    assert (Path(second.instance_path) / "secret_key").read_text().strip() == app.config["SECRET_KEY"]


def test_restore_refuses_a_target_that_holds_data_unless_forced(app, tmp_path):
    with app.app_context():
        make_org("已有数据")
        backup.backup(tmp_path / "b")
        with pytest.raises(backup.BackupError, match="--force"):
            backup.restore(tmp_path / "b")
        assert backup.restore(tmp_path / "b", force=True)["rows"] >= 1


def test_restore_refuses_a_media_file_with_a_flipped_byte_and_names_it(app, tmp_path):
    with app.app_context():
        add_media(app)
        backup.backup(tmp_path / "b")
    damaged = tmp_path / "b" / "media" / "covers" / "abc.png"
    data = bytearray(damaged.read_bytes())
    data[10] ^= 0x01
    damaged.write_bytes(bytes(data))
    with app.app_context(), pytest.raises(backup.BackupError, match="media/covers/abc.png") as refused:
        backup.restore(tmp_path / "b", force=True)
    assert "校验和不符" in str(refused.value) and "checksum mismatch" in str(refused.value)


def test_restore_refuses_a_truncated_database(app, tmp_path):
    with app.app_context():
        make_org()
        manifest = backup.backup(tmp_path / "b")
    dump = tmp_path / "b" / manifest["database"]["path"]
    with dump.open("r+b") as handle:
        handle.truncate(dump.stat().st_size // 2)
    with app.app_context(), pytest.raises(backup.BackupError, match=manifest["database"]["path"]):
        backup.restore(tmp_path / "b", force=True)


def test_restore_refuses_a_database_damaged_together_with_its_manifest(app, tmp_path):
    if app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("SQLite's integrity check")
    with app.app_context():
        for _ in range(50):
            make_org()
        backup.backup(tmp_path / "b")
    copy = tmp_path / "b" / "database.sqlite3"
    with copy.open("r+b") as handle:  # garbage over the second page (a b-tree page)
        handle.seek(4096 + 8)
        handle.write(b"\xff" * 200)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["database"].update(size=copy.stat().st_size, sha256=backup.sha256(copy))
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with app.app_context(), pytest.raises(backup.BackupError, match="integrity"):
        backup.verify(tmp_path / "b")


def test_backup_refuses_a_folder_that_is_not_empty(app, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "old").write_text("x")
    with app.app_context(), pytest.raises(backup.BackupError, match="not empty"):
        backup.backup(tmp_path / "b")


def test_backup_and_restore_commands_print_what_they_did(app, fresh, tmp_path):
    with app.app_context():
        make_org("命令行")
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "backup written to" in result.output
    second = fresh()
    result = second.test_cli_runner().invoke(args=["restore", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "search index rebuild queued" in result.output
    os.remove(tmp_path / "b" / "manifest.json")
    result = second.test_cli_runner().invoke(args=["restore", "--force", str(tmp_path / "b")])
    assert result.exit_code == 1 and "manifest.json" in result.output


def test_missing_pg_dump_is_reported_clearly(app, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(backup.BackupError, match="pg_dump is not on PATH"):
        backup._pg_tool("pg_dump")


def test_files_the_database_refers_to_but_media_lacks_are_listed_as_missing(app, tmp_path):
    with app.app_context():
        owner = make_user(roles=[("lecturer", None)])
        db.session.add(
            Course(title="封面丢了", owner_id=owner.id, state="draft", cover_path="covers/gone.png")
        )
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "covers/gone.png" in result.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["media"]["missing"] == ["covers/gone.png"]


def test_a_backup_from_newer_code_is_refused(app, tmp_path):
    with app.app_context():
        backup.backup(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["migration"] = "9999_from_the_future"
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with app.app_context(), pytest.raises(backup.BackupError, match="newer code"):
        backup.verify(tmp_path / "b")


def test_a_manifest_path_leaving_the_media_folder_is_refused(app, tmp_path):
    with app.app_context():
        add_media(app)
        backup.backup(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["media"]["files"][0]["path"] = "../../escape.txt"
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with app.app_context(), pytest.raises(backup.BackupError, match="invalid path"):
        backup.verify(tmp_path / "b")
