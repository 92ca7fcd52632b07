"""Watched time as a union of intervals: replaying a part adds nothing, seeking past adds nothing.

Pure functions over sorted, disjoint [start, end] lists of seconds, so the rules are testable
without a database (tests/learning/test_intervals.py checks them with Hypothesis).
"""

Interval = tuple[float, float]


def merge(intervals: list[Interval], new: Interval) -> list[Interval]:
    """The union of a sorted disjoint list and one more interval, again sorted and disjoint.

    Touching intervals join (playing 0–10 then 10–20 is 0–20).
    """
    start, end = new
    if end <= start:
        return list(intervals)
    result: list[Interval] = []
    placed = False
    for a, b in intervals:
        if b < start:
            result.append((a, b))
        elif a > end:
            if not placed:
                result.append((start, end))
                placed = True
            result.append((a, b))
        else:
            start, end = min(a, start), max(b, end)
    if not placed:
        result.append((start, end))
    return result


def covered(intervals: list[Interval], limit: float | None = None) -> float:
    """Total length of the union, counting only what lies within [0, limit] when given."""
    total = 0.0
    for a, b in intervals:
        if limit is not None:
            a, b = max(a, 0.0), min(b, limit)
        if b > a:
            total += b - a
    return total


SLACK_SECONDS = 2.0  # per beat in the stated rule: network and clock jitter
CLOCK_MARGIN = 1.1  # 10%: phone clocks and timers drift
SESSION_SLACK_SECONDS = 4.0  # once per viewing session (see wall_needed)


def wall_needed(played: float, rate: float) -> float:
    """Real seconds needed to play `played` seconds of media at `rate` (capped at 2×), less 10%.

    A viewing session adds these up over its beats and accepts a beat only while the sum stays
    within the session's age plus SESSION_SLACK_SECONDS. For one beat this is the rule below; over
    many it is the rule summed up, except that the slack is given once: a per-beat 2 s would let a
    page claim 2 s of video per beat at any number of beats per second.
    """
    return played / (min(rate, 2.0) * CLOCK_MARGIN)


def plausible(played: float, rate: float, wall_seconds: float) -> bool:
    """Could `played` seconds of media have been played at `rate` in `wall_seconds` of real time?

    The rule: played ≤ wall × min(rate, 2) × 1.1 + 2 s (10% and 2 s for clocks and network).
    Kept as stated for reference and tests; sessions apply it through wall_needed.
    """
    return played <= wall_seconds * min(rate, 2.0) * CLOCK_MARGIN + SLACK_SECONDS
