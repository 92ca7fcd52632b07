"""Load a course folder's quiz.yaml: its question bank and its lessons' quiz settings.

Questions match by (course, code): new ones are added, changed ones updated, the rest left alone;
questions missing from the file are kept (delete them in the app). Every question is checked
before anything is written, and errors name the question's code.
"""

from pathlib import Path

import yaml

from school import db
from school.content.service import Summary, read_text
from school.courses.models import Course
from school.errors import Invalid
from school.quizzes import service as quizzes
from school.quizzes.models import Question

TRUE_WORDS = {True: True, False: False, "对": True, "错": False, "正确": True, "错误": False}


def _letters(value) -> list[int]:
    """Option letters (`B`, `[A, C]` or `AC`) as option indexes."""
    if isinstance(value, str):
        value = [c for c in value if not c.isspace() and c not in ",，、"]
    if not isinstance(value, list):
        raise ValueError
    out = []
    for letter in value:
        index = quizzes.LETTERS.find(str(letter).strip().upper())
        if len(str(letter).strip()) != 1 or index < 0:
            raise ValueError
        out.append(index)
    return out


def _question(course: Course, raw: dict, lessons: dict) -> tuple[str, quizzes.QuestionData]:
    if not isinstance(raw, dict):
        raise Invalid("an entry under questions is not a mapping")
    code = str(raw.get("code") or "").strip()
    if not code or len(code) > 64:
        raise Invalid("a question has no code (or one longer than 64 characters)")
    kind = raw.get("kind")
    answer = raw.get("answer")
    try:
        if kind in ("single", "multiple"):
            parsed = _letters(answer)
        elif kind == "truefalse":
            parsed = [TRUE_WORDS[answer]]
        elif kind == "fill":
            parsed = [str(a) for a in (answer if isinstance(answer, list) else [answer]) if a is not None]
        else:
            raise Invalid(f"question {code}: kind must be single, multiple, truefalse or fill")
    except (ValueError, KeyError, TypeError):
        raise Invalid(f"question {code}: answer {answer!r} does not fit kind {kind}") from None
    lesson_id = None
    if raw.get("lesson"):
        if raw["lesson"] not in lessons:
            raise Invalid(f"question {code}: lesson {raw['lesson']} is not a lesson of this course")
        lesson_id = lessons[raw["lesson"]].id
    try:
        data = quizzes.check_question(
            kind,
            str(raw.get("stem") or ""),
            [str(o) for o in raw.get("options") or []],
            parsed,
            str(raw.get("explanation") or ""),
            lesson_id,
        )
    except Invalid as error:
        raise Invalid(f"question {code}: {error.message}") from None
    return code, data


def _same(question: Question, data: quizzes.QuestionData) -> bool:
    return (question.kind, question.stem, question.options, question.answer, question.explanation,
            question.lesson_id) == (data.kind, data.stem, data.options, data.answer, data.explanation,
                                    data.lesson_id)  # fmt: skip


def load_quiz(course: Course, path: Path, summary: Summary) -> None:
    """Upsert a course's bank and lesson quiz settings from its quiz.yaml (idempotent)."""
    data = yaml.safe_load(read_text(path)) or {}
    lessons = {lesson.code: lesson for lesson in course.lessons if lesson.code}
    checked: list[tuple[str, quizzes.QuestionData]] = []
    codes: set[str] = set()
    for raw in data.get("questions") or []:
        try:
            code, question = _question(course, raw, lessons)
        except Invalid as error:
            raise Invalid(f"{course.code}/quiz.yaml: {error.message}") from None
        if code in codes:
            raise Invalid(f"{course.code}/quiz.yaml: question code {code} appears twice")
        codes.add(code)
        checked.append((code, question))

    existing = {q.code: q for q in quizzes.course_questions(course.id) if q.code}
    for position, (code, question) in enumerate(checked, 1):
        row = existing.get(code)
        if row is None:
            row = quizzes.save_question(course, question, code=code)
            summary.count("questions", "created")
        elif not _same(row, question):
            quizzes.save_question(course, question, row)
            summary.count("questions", "updated")
        else:
            summary.count("questions", "unchanged")
        if row.position != position:
            row.position = position
    db.session.flush()

    for lesson_code, spec in (data.get("lessons") or {}).items():
        lesson = lessons.get(lesson_code)
        if lesson is None or not isinstance(spec, dict):
            raise Invalid(f"{course.code}/quiz.yaml: lessons: {lesson_code} is not a lesson of this course")
        values = (
            bool(spec.get("enabled", True)),
            int(spec.get("questions", 5)),
            int(spec.get("pass_percent", 60)),
            int(spec.get("attempts", 0)),
            str(spec.get("grading", "highest")),
            int(spec.get("time_limit_minutes") or 0) or None,
        )
        current = quizzes.quiz_settings(lesson.id)
        if current is not None and values == (
            current.enabled,
            current.question_count,
            current.pass_percent,
            current.max_attempts,
            current.grading,
            current.time_limit_minutes,
        ):
            continue
        try:
            quizzes.set_quiz_settings(lesson, *values)
        except Invalid as error:
            raise Invalid(f"{course.code}/quiz.yaml: lessons: {lesson_code}: {error.message}") from None
