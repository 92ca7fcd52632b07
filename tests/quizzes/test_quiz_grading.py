"""Grading rules without HTTP: each question type, fill-in variants, shuffled options."""

import random

import pytest

from school.errors import Invalid
from school.quizzes import service


def item(kind, answer, options=()):
    return {"kind": kind, "answer": answer, "options": list(options)}


def test_single_choice_is_right_only_with_the_correct_option(ctx):
    q = item("single", [2], "abc")
    assert service.is_correct(q, service.parse_answer(q, ["2"]))
    assert not service.is_correct(q, service.parse_answer(q, ["1"]))
    assert service.parse_answer(q, ["1", "2"]) is None  # two picks on a single choice: no answer


def test_multiple_choice_needs_exactly_the_correct_set(ctx):
    q = item("multiple", [0, 2], "abcd")
    assert service.is_correct(q, service.parse_answer(q, ["2", "0"]))
    assert not service.is_correct(q, service.parse_answer(q, ["0"]))
    assert not service.is_correct(q, service.parse_answer(q, ["0", "2", "3"]))


def test_true_false_is_graded_against_the_statement(ctx):
    q = item("truefalse", [False])
    assert service.is_correct(q, service.parse_answer(q, ["false"]))
    assert not service.is_correct(q, service.parse_answer(q, ["true"]))
    assert service.parse_answer(q, ["maybe"]) is None


def test_fill_in_accepts_every_variant_loosely(ctx):
    q = item("fill", ["党课", "Party lesson"])
    for given in ("党课", " 党 课 ", "党课。", "ｐａｒｔｙ　ＬＥＳＳＯＮ", "party lesson."):
        assert service.is_correct(q, service.parse_answer(q, [given])), given
    assert not service.is_correct(q, service.parse_answer(q, ["党小组会"]))
    assert not service.is_correct(q, service.parse_answer(q, [""]))


def test_out_of_range_or_garbage_choices_count_as_unanswered(ctx):
    q = item("single", [0], "ab")
    assert service.parse_answer(q, ["5"]) is None
    assert service.parse_answer(q, ["-1"]) is None
    assert service.parse_answer(q, ["x"]) is None


def test_grade_counts_right_answers_and_rounds_the_percentage_down(ctx):
    items = [item("truefalse", [True])] * 3
    results, right, percent = service.grade(items, ["true", "true", "false"])
    assert results == [True, True, False] and right == 2 and percent == 66


def test_shuffled_options_keep_the_answer_on_the_same_text(ctx, quiz_lesson):
    import sqlalchemy as sa

    from school import db
    from school.quizzes.models import Question

    question = db.session.scalar(sa.select(Question).where(Question.kind == "multiple"))
    orders = set()
    for seed in range(20):
        shown = service.snapshot(question, random.Random(seed))
        orders.add(tuple(shown["order"]))
        correct_texts = {shown["options"][i] for i in shown["answer"]}
        assert correct_texts == {"支部党员大会", "支委会", "党小组会"}
    assert len(orders) > 1  # really shuffled


@pytest.mark.parametrize(
    ("kind", "options", "answer"),
    [
        ("single", ["a"], [0]),  # one option
        ("single", ["a", "b"], [0, 1]),  # two correct
        ("multiple", ["a", "b", "c"], [1]),  # one correct
        ("single", ["a", "a"], [0]),  # duplicate text
        ("fill", [], ["  "]),  # no accepted answer
        ("truefalse", [], ["yes"]),
        ("essay", [], []),
    ],
)
def test_malformed_questions_are_refused(ctx, kind, options, answer):
    with pytest.raises(Invalid):
        service.check_question(kind, "题目", options, answer)
