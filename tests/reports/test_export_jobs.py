import os
import time
from datetime import timedelta

import pytest

from school import db
from school.extensions import huey
from school.jobs.models import Job
from school.reports import export_jobs
from tests.conftest import csrf_from, sign_in
from tests.factories import make_organizer, make_tree, make_user
from tests.reports.test_hours_report import csv_rows


def drain(app) -> None:
    while (task := huey.dequeue()) is not None:
        with app.app_context():
            huey.execute(task)


@pytest.fixture()
def small_limit(app, monkeypatch):
    monkeypatch.setitem(app.config, "EXPORT_INLINE_ROWS", 2)


@pytest.fixture()
def tree(app):
    with app.app_context():
        t = make_tree()
        for n in range(4):
            make_user(org=t["branch_a1"], name=f"党员{n}")
        make_organizer(t["district_a"], username="org-a")
        make_organizer(t["district_a"], username="org-a2")
        make_organizer(t["district_b"], username="org-b")
        return {k: v.id for k, v in t.items()}


def ask(client, kind="hours", fmt="csv", **params):
    page = client.get("/reports/hours").get_data(as_text=True)
    data = {"csrf_token": csrf_from(page), "kind": kind, "format": fmt, **params}
    return client.post("/reports/exports", data=data)


def job_count(app) -> int:
    import sqlalchemy as sa

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Job))


def test_small_reports_download_inline(client, tree):
    sign_in(client, "org-a")
    page = client.get("/reports/hours").get_data(as_text=True)
    assert "/reports/hours.csv" in page and "/reports/exports" not in page


def test_large_report_is_written_by_a_job_for_the_organizer_who_asked(app, client, tree, small_limit):
    sign_in(client, "org-a")
    query = f"?org_id={tree['branch_a1']}"
    page = client.get("/reports/hours" + query).get_data(as_text=True)
    assert 'action="/reports/exports"' in page and "/reports/hours.csv" not in page
    response = ask(client, org_id=tree["branch_a1"])
    assert response.status_code == 302
    status_url = response.headers["Location"]
    assert client.get(status_url + ".json").get_json()["state"] == "queued"
    drain(app)
    status = client.get(status_url + ".json").get_json()
    assert status["state"] == "done" and status["progress"] == 100
    assert "js/export.js" in client.get(status_url).get_data(as_text=True)
    body = client.get(status["download"])
    assert body.status_code == 200 and "filename*=UTF-8''" in body.headers["Content-Disposition"]
    inline = client.get("/reports/hours.csv" + query).data
    assert csv_rows(body.data) == csv_rows(inline)


def test_another_organizer_cannot_follow_or_download_it(app, client, tree, small_limit):
    sign_in(client, "org-a")
    status_url = ask(client, org_id=tree["branch_a1"]).headers["Location"]
    drain(app)
    download = client.get(status_url + ".json").get_json()["download"]
    other = app.test_client()
    sign_in(other, "org-a2")  # same district, but did not ask for it
    for url in (status_url, status_url + ".json", download):
        assert other.get(url).status_code == 404


def test_export_outside_my_scope_is_refused_and_queues_nothing(app, client, tree):
    sign_in(client, "org-a")
    response = ask(client, org_id=tree["district_b"])
    assert response.status_code == 403
    assert job_count(app) == 0


@pytest.mark.parametrize("kind, fmt", [("hours", "pdf"), ("salary", "csv")])
def test_bad_export_request_is_refused_and_queues_nothing(app, client, tree, kind, fmt):
    sign_in(client, "org-a")
    response = ask(client, kind=kind, fmt=fmt)
    assert response.status_code == 400
    assert job_count(app) == 0


def test_an_expired_export_cannot_be_downloaded_and_is_deleted(app, client, tree, small_limit):
    sign_in(client, "org-a")
    status_url = ask(client, fmt="xlsx", org_id=tree["branch_a1"]).headers["Location"]
    drain(app)
    download = client.get(status_url + ".json").get_json()["download"]
    assert client.get(download).status_code == 200
    with app.app_context():
        job = db.session.get(Job, int(status_url.rsplit("/", 1)[1]))
        path = export_jobs.export_dir() / job.result["file"]
        job.finished_at -= timedelta(hours=app.config["EXPORT_KEEP_HOURS"] + 1)
        db.session.commit()
        old = time.time() - 3600 * (app.config["EXPORT_KEEP_HOURS"] + 1)
        os.utime(path, (old, old))
    refused = client.get(download)
    assert refused.status_code == 404 and "过期" in refused.get_data(as_text=True)
    with app.app_context():
        assert export_jobs.expire_exports(db.utcnow()) >= 1
    assert not path.exists()


def test_plan_and_course_reports_export_as_jobs_too(app, client, tree, small_limit):
    from tests.plans.study_data import local_today, make_course, make_plan

    with app.app_context():
        from school.orgs.models import Org

        course = make_course(title="党章", lessons=2)
        plan = make_plan(db.session.get(Org, tree["district_a"]), "学党章", local_today(app), [course])
        plan_id, course_id = plan.id, course.id
    sign_in(client, "org-a")
    for kind, params in (("plan", {"plan_id": plan_id}), ("course", {"course_id": course_id})):
        status_url = ask(client, kind=kind, **params).headers["Location"]
        drain(app)
        status = client.get(status_url + ".json").get_json()
        assert status["state"] == "done"
        assert client.get(status["download"]).data.startswith("\ufeff".encode())
