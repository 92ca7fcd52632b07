"""recall@5 of the Chinese query set (content/search/queries.yaml) over the demo courses.

The demo content is loaded through the real loader and pipeline (with 2-second demo clips instead
of 20-second ones, to keep `make test` fast) and indexed by the real job.
"""

from pathlib import Path

import sqlalchemy as sa
import yaml

from school import db
from school.content import courses as course_loader
from school.courses.models import Lesson
from school.search import service as search
from tests.search.test_search import run_jobs

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "content" / "demo"


def test_recall_at_5_over_the_demo_courses(app, monkeypatch):
    real = course_loader.generate_media
    monkeypatch.setattr(
        course_loader,
        "generate_media",
        lambda spec, target: real({**spec, "seconds": 2, "size": "160x90"}, target),
    )
    result = app.test_cli_runner().invoke(app.cli, ["content", "load", str(DEMO)])
    assert result.exit_code == 0, result.output
    run_jobs(app)
    cases = yaml.safe_load((ROOT / "content/search/queries.yaml").read_text(encoding="utf-8"))
    assert len(cases) >= 40
    with app.test_request_context():
        code_of = dict(db.session.execute(sa.select(Lesson.id, Lesson.code)).all())
        lessons_of_course = {}
        for lesson_id, course_id in db.session.execute(sa.select(Lesson.id, Lesson.course_id)):
            lessons_of_course.setdefault(course_id, set()).add(code_of[lesson_id])
        missed = []
        for case in cases:
            top: list[str] = []
            for hit in search.search(case["q"], per_page=20).hits:
                found = {code_of[hit.lesson_id]} if hit.lesson_id else lessons_of_course[hit.course_id]
                top += [code for code in sorted(found) if code not in top]
            # a course-level hit stands for the course's lessons (it leads to the lesson list)
            if not set(case["expect"]) & set(top[:5]):
                missed.append((case["q"], case["expect"], top[:5]))
        recall = 1 - len(missed) / len(cases)
        print(f"recall@5 = {recall:.3f} over {len(cases)} queries; missed: {missed}")
        assert recall >= 0.9, missed
        nothing = yaml.safe_load((ROOT / "content/search/no_results.yaml").read_text(encoding="utf-8"))
        for query in nothing["queries"]:
            results = search.search(query)
            assert results.total == 0 or results.partial, (query, [h.lesson_title for h in results.hits])
