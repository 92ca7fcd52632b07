"""`flask media sweep`: files no row refers to are listed, and removed only when asked; files in
use, young files, work folders and upload parts are never touched."""

import os
import time

import sqlalchemy as sa

from school import db
from school.courses import service as courses
from school.media import storage, sweep
from school.media.models import Attachment, MediaAsset, Rendition, SubtitleTrack
from tests.factories import make_user

DAY = 24 * 3600


def stored(relative: str, age_hours: float = 48, data: bytes = b"0123456789") -> str:
    """A file under MEDIA_DIR last modified `age_hours` ago (call inside an app context)."""
    path = storage.absolute(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - age_hours * 3600
    os.utime(path, (then, then))
    return relative


def exists(relative: str) -> bool:
    return storage.absolute(relative).is_file()


def lesson_with_every_kind_of_file():
    """A course and lesson whose rows name one old file of each kind; returns the paths."""
    owner = make_user(roles=[("lecturer", None)])
    course = courses.create_course(owner, "课程")
    lesson = courses.create_lesson(course, "第一课")
    course.cover_path = stored(storage.new_name("covers", ".png"))
    asset = MediaAsset(
        lesson_id=lesson.id, state="ready", original_path=stored(storage.new_name("originals"))
    )
    db.session.add(asset)
    db.session.flush()
    run = storage.new_name(f"renditions/{asset.id}")
    asset.renditions = [
        Rendition(name="360p", path=stored(f"{run}/360p.mp4"), mime="video/mp4"),
        Rendition(name="poster", path=stored(f"{run}/poster.jpg"), mime="image/jpeg"),
    ]
    attachment = Attachment(
        lesson_id=lesson.id,
        filename="讲义.pdf",
        kind="pdf",
        mime="application/pdf",
        path=stored(storage.new_name("attachments", ".pdf")),
    )
    track = SubtitleTrack(lesson_id=lesson.id, path=stored(storage.new_name("subtitles", ".vtt")))
    db.session.add_all([attachment, track])
    db.session.commit()
    return lesson, [
        course.cover_path,
        asset.original_path,
        *(r.path for r in asset.renditions),
        attachment.path,
        track.path,
    ]


def test_path_columns_cover_every_kind_of_stored_file():
    assert {f"{c.class_.__name__}.{c.key}" for c in sweep.PATH_COLUMNS} == {
        "MediaAsset.original_path",
        "Rendition.path",
        "Attachment.path",
        "SubtitleTrack.path",
        "Course.cover_path",
    }


def test_files_named_by_any_row_are_kept(app):
    with app.app_context():
        _lesson, paths = lesson_with_every_kind_of_file()
        assert sweep.find_orphans(24, time.time()) == []
    result = app.test_cli_runner().invoke(app.cli, ["media", "sweep", "--delete"])
    assert result.exit_code == 0, result.output
    assert "removed 0 orphan files" in result.output
    with app.app_context():
        assert all(exists(p) for p in paths)


def test_unreferenced_old_file_is_listed_and_removed_with_delete(app):
    with app.app_context():
        _lesson, paths = lesson_with_every_kind_of_file()
        orphan = stored(storage.new_name("attachments", ".pdf"), data=b"x" * 2000)
        assert sweep.find_orphans(24, time.time()) == [sweep.Orphan(orphan, 2000)]
    result = app.test_cli_runner().invoke(app.cli, ["media", "sweep", "--delete"])
    assert result.exit_code == 0, result.output
    assert f"removed {orphan}  2.0 KB" in result.output
    assert "removed 1 orphan files, 0.0 MB" in result.output
    with app.app_context():
        assert not exists(orphan)
        assert all(exists(p) for p in paths)


def test_file_of_a_deleted_attachment_is_an_orphan(app):
    with app.app_context():
        lesson, _paths = lesson_with_every_kind_of_file()
        attachment = lesson.attachments[0]
        db.session.delete(attachment)  # a row deleted without its file
        db.session.commit()
        assert [o.path for o in sweep.find_orphans(24, time.time())] == [attachment.path]


def test_renditions_replaced_by_a_new_transcode_are_removed_with_their_folder(app):
    with app.app_context():
        lesson, _paths = lesson_with_every_kind_of_file()
        asset = db.session.scalar(sa.select(MediaAsset))
        old = [r.path for r in asset.renditions]
        asset.renditions = []
        db.session.flush()
        run = storage.new_name(f"renditions/{asset.id}")
        asset.renditions = [
            Rendition(name="360p", path=stored(f"{run}/360p.mp4", age_hours=0), mime="video/mp4")
        ]
        db.session.commit()
        orphans = sweep.find_orphans(24, time.time())
        assert sorted(o.path for o in orphans) == sorted(old)
        assert sweep.delete_orphans(orphans, 24, time.time()) == orphans
        assert not storage.absolute(old[0]).parent.exists()  # the old run's folder, now empty
        assert exists(f"{run}/360p.mp4")


def test_unreferenced_file_younger_than_the_grace_period_is_kept(app):
    with app.app_context():
        young = stored(storage.new_name("originals"), age_hours=2)
        assert sweep.find_orphans(24, time.time()) == []
    runner = app.test_cli_runner()
    assert "0 orphan files" in runner.invoke(app.cli, ["media", "sweep", "--delete"]).output
    listed = runner.invoke(app.cli, ["media", "sweep", "--older-than", "1"])
    assert young in listed.output
    with app.app_context():
        assert exists(young)


def test_a_file_moved_into_place_counts_as_new(app, tmp_path):
    source = tmp_path / "old-recording.mp4"
    source.write_bytes(b"video")
    os.utime(source, (time.time() - 30 * DAY,) * 2)  # e.g. `flask media ingest --move` of an old file
    with app.app_context():
        storage.move_in(source, storage.new_name("originals"))
        assert sweep.find_orphans(24, time.time()) == []


def test_work_folders_upload_parts_and_partial_files_are_kept(app):
    with app.app_context():
        kept = [
            stored("work/transcode-7-host-123-abcdef/360p.mp4"),
            stored("uploads/0123abcd.part"),
            stored("uploads/stray-file"),
            stored("originals/abc.part"),  # being renamed into place by storage.move_in
            stored("covers/.nfs000123"),  # hidden: not a name we generate
        ]
        assert sweep.find_orphans(24, time.time()) == []
    result = app.test_cli_runner().invoke(app.cli, ["media", "sweep", "--delete"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert all(exists(p) for p in kept)


def test_symlinks_are_neither_followed_nor_deleted(app, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.pdf").write_bytes(b"keep me")
    os.utime(outside / "precious.pdf", (time.time() - 30 * DAY,) * 2)
    with app.app_context():
        base = storage.root()
        (base / "attachments").mkdir()
        os.symlink(outside, base / "linked-folder")
        os.symlink(outside / "precious.pdf", base / "attachments" / "link.pdf")
        assert sweep.find_orphans(24, time.time()) == []
    app.test_cli_runner().invoke(app.cli, ["media", "sweep", "--delete"])
    assert (outside / "precious.pdf").read_bytes() == b"keep me"
    assert (base / "attachments" / "link.pdf").is_symlink()


def test_search_index_inside_media_dir_is_kept(app):
    with app.app_context():
        index = storage.root() / "index"
        app.config["INDEX_DIR"], saved = str(index), app.config["INDEX_DIR"]
        try:
            segment = stored("index/MAIN_1.seg")
            assert sweep.find_orphans(24, time.time()) == []
            assert exists(segment)
        finally:
            app.config["INDEX_DIR"] = saved


def test_file_referenced_again_before_deletion_is_kept(app):
    with app.app_context():
        lesson, _paths = lesson_with_every_kind_of_file()
        late = stored(storage.new_name("attachments", ".pdf"))
        orphans = sweep.find_orphans(24, time.time())
        assert [o.path for o in orphans] == [late]
        # Its row commits between the listing and the deletion.
        db.session.add(
            Attachment(lesson_id=lesson.id, filename="a.pdf", kind="pdf", mime="application/pdf", path=late)
        )
        db.session.commit()
        assert sweep.delete_orphans(orphans, 24, time.time()) == []
        assert exists(late)


def test_dry_run_lists_orphans_and_deletes_nothing(app):
    with app.app_context():
        orphans = [stored(storage.new_name("originals"), data=b"x" * 1024 * 1024) for _ in range(2)]
    result = app.test_cli_runner().invoke(app.cli, ["media", "sweep"])
    assert result.exit_code == 0, result.output
    assert all(f"{p}  1.0 MB" in result.output for p in orphans)
    assert "2 orphan files, 2.0 MB; run with --delete to remove them" in result.output
    with app.app_context():
        assert all(exists(p) for p in orphans)


def test_deletion_never_goes_through_a_symlink(app):
    with app.app_context():
        _lesson, paths = lesson_with_every_kind_of_file()
        listed = stored(storage.new_name("attachments", ".pdf"))
        orphans = sweep.find_orphans(24, time.time())
        # Swapped for a link to a file in use after the listing: the link's target must survive.
        storage.absolute(listed).unlink()
        os.symlink(storage.absolute(paths[1]), storage.root() / listed)
        outside = [sweep.Orphan("../escape.txt", 1), sweep.Orphan(f"{listed}/../../{paths[1]}", 1)]
        assert sweep.delete_orphans([*orphans, *outside], 24, time.time()) == []
        assert all(exists(p) for p in paths)
