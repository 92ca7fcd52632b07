"""A member's random play / seek / replay / pause / offline / duplicate / reload sequences, run
against the real service and database: coverage never exceeds what was genuinely played, and once
every queued beat has arrived it equals it."""

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from school import db
from school.errors import SchoolError
from school.learning import intervals
from school.learning import service as learning
from tests.factories import make_lesson, make_user

DURATION = 120.0


class Member(RuleBasedStateMachine):
    app = None  # set by the test

    def __init__(self):
        super().__init__()
        self.context = self.app.app_context()
        self.context.push()
        self.now = db.utcnow()
        db.utcnow = lambda: self.now  # restored by the test
        self.user = make_user()
        self.lesson = make_lesson(duration=DURATION)
        self.played: list[tuple[float, float]] = []  # the truth: what really played
        self.position = 0.0
        self.online = True
        self.queue: list[tuple[str, dict]] = []
        self.last_sent: tuple[str, dict] | None = None
        self.open_session()

    def open_session(self):
        viewing, _ = learning.start_session(self.user, self.lesson)
        db.session.commit()
        self.session_id, self.seq = viewing.id, 0

    def send(self, session_id: str, body: dict):
        try:
            learning.record_beat(self.user, session_id, body)
            db.session.commit()
            return True
        except SchoolError:
            db.session.rollback()
            return False

    def stored(self) -> float:
        db.session.expire_all()
        progress = learning.get_progress(self.user.id, self.lesson.id)
        return progress.covered_seconds if progress else 0.0

    @rule(seconds=st.floats(0.5, 25), rate=st.sampled_from([0.75, 1.0, 1.25, 1.5, 2.0]))
    def play(self, seconds, rate):
        end = min(self.position + seconds, DURATION)
        if end <= self.position:
            return
        self.now += timedelta(seconds=(end - self.position) / rate)
        self.played = intervals.merge(self.played, (self.position, end))
        self.seq += 1
        beat = (self.session_id, {"seq": self.seq, "from": self.position, "to": end, "rate": rate})
        self.position = end
        if self.online:
            assert self.send(*beat), f"an honest beat was refused: {beat}"
            self.last_sent = beat
        else:
            self.queue.append(beat)

    @rule(target_second=st.floats(0, DURATION))
    def seek(self, target_second):
        self.position = target_second  # a jump plays nothing and reports nothing

    @rule(back=st.floats(1, 60))
    def replay(self, back):
        self.position = max(0.0, self.position - back)

    @rule(seconds=st.floats(0, 600))
    def pause(self, seconds):
        self.now += timedelta(seconds=seconds)

    @rule()
    def go_offline(self):
        self.online = False

    @rule()
    def come_back_online(self):
        self.online = True
        for beat in self.queue:  # the page flushes its queue in order
            assert self.send(*beat), f"a queued honest beat was refused: {beat}"
            self.last_sent = beat
        self.queue.clear()

    @precondition(lambda self: self.last_sent is not None)
    @rule()
    def send_again(self):
        assert not self.send(*self.last_sent), "a duplicate beat was accepted"

    @rule()
    def reload_or_switch_device(self):
        self.open_session()  # queued beats of the old session still go out later

    @invariant()
    def coverage_is_never_more_than_genuinely_played(self):
        assert self.stored() <= intervals.covered(self.played, DURATION) + 0.05

    @invariant()
    def coverage_is_exactly_what_played_once_everything_arrived(self):
        if not self.queue:
            assert self.stored() == pytest.approx(intervals.covered(self.played, DURATION), abs=0.05)

    def teardown(self):
        db.session.remove()
        self.context.pop()


def test_random_viewing_never_overstates_coverage(app, monkeypatch):
    monkeypatch.setattr(db, "utcnow", db.utcnow)  # the machine replaces it; restore afterwards
    Member.app = app
    run_state_machine_as_test(
        Member,
        settings=settings(
            max_examples=25, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
