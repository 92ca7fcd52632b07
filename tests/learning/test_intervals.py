"""The interval union and the plausibility rule, checked on random inputs (Hypothesis)."""

from hypothesis import given
from hypothesis import strategies as st

from school.learning import intervals

seconds = st.floats(min_value=0, max_value=3600, allow_nan=False)
spans = st.tuples(seconds, seconds).map(lambda p: (min(p), max(p)))


def union_of(items):
    result = []
    for item in items:
        result = intervals.merge(result, item)
    return result


def measure_on_grid(items, step=0.5):
    """Reference measure: how many half-second cells any interval covers (ends on the grid)."""
    cells = set()
    for a, b in items:
        cells.update(range(int(a / step), int(b / step)))
    return len(cells) * step


@given(st.lists(spans, max_size=30))
def test_union_is_sorted_and_disjoint(items):
    result = union_of(items)
    for (a1, b1), (a2, b2) in zip(result, result[1:], strict=False):
        assert a1 < b1 and b1 < a2 <= b2


@given(st.lists(spans, max_size=30), st.randoms())
def test_union_does_not_depend_on_order(items, random):
    shuffled = list(items)
    random.shuffle(shuffled)
    assert union_of(items) == union_of(shuffled)


@given(st.lists(spans, min_size=1, max_size=30))
def test_replaying_a_part_adds_nothing(items):
    result = union_of(items)
    again = union_of([*items, *items[: len(items) // 2 + 1]])
    assert again == result
    assert intervals.covered(again) == intervals.covered(result)


@given(st.lists(spans, max_size=30))
def test_coverage_never_exceeds_the_parts_nor_goes_down(items):
    result, before = [], 0.0
    for item in items:
        result = intervals.merge(result, item)
        now = intervals.covered(result)
        assert now >= before - 1e-9
        before = now
    assert intervals.covered(result) <= sum(b - a for a, b in items) + 1e-6


@given(st.lists(st.tuples(st.integers(0, 7200), st.integers(1, 600)), max_size=25))
def test_coverage_equals_the_measure_of_the_union(raw):
    items = [(a / 2, (a + n) / 2) for a, n in raw]  # half-second grid, so the reference is exact
    assert intervals.covered(union_of(items)) == measure_on_grid(items)


@given(st.lists(spans, max_size=20), st.floats(min_value=1, max_value=600))
def test_coverage_counts_only_inside_the_media(items, limit):
    result = union_of(items)
    assert intervals.covered(result, limit) <= limit + 1e-9


@given(
    st.floats(min_value=0, max_value=600, allow_nan=False),
    st.floats(min_value=0.5, max_value=16),
    st.floats(min_value=0, max_value=600, allow_nan=False),
)
def test_plausible_follows_the_rule(played, rate, wall):
    expected = played <= wall * min(rate, 2.0) * 1.1 + 2.0
    assert intervals.plausible(played, rate, wall) is expected


def test_a_rate_above_two_buys_nothing():
    # 60 s of real time at a claimed 16× still only allows what 2× would.
    assert intervals.plausible(134, 16, 60)
    assert not intervals.plausible(135, 16, 60)


@given(
    st.floats(min_value=0, max_value=600, allow_nan=False),
    st.floats(min_value=0.5, max_value=2),
    st.floats(min_value=0, max_value=600, allow_nan=False),
)
def test_a_session_accepts_a_first_beat_the_rule_accepts(played, rate, wall):
    if intervals.plausible(played, rate, wall):
        assert intervals.wall_needed(played, rate) <= wall + intervals.SESSION_SLACK_SECONDS


@given(st.integers(2, 500), st.floats(min_value=0.1, max_value=2), st.floats(min_value=0.5, max_value=2))
def test_slack_does_not_pile_up_over_many_quick_beats(beats, played, rate):
    # Any number of small beats sent with no time passing earn at most the one-off slack.
    claimed = 0.0
    for _ in range(beats):
        needs = intervals.wall_needed(played, rate)
        if claimed + needs <= 0 + intervals.SESSION_SLACK_SECONDS:
            claimed += needs
    assert claimed * min(rate, 2) * 1.1 <= intervals.SESSION_SLACK_SECONDS * 2.2 + 1e-9
