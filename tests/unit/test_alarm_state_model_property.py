"""The state model against a small reference model of the ISA-18.2 table, on random sequences.

The reference model below is written from the ISA-18.2 table (section 1 of the alarm
reference; docs/alarms.md has the same table): a dict (state, event) -> (transition, target),
a removal layer (out of service over suppressed over shelved, each remembered beneath a
stronger one), and on/off delays, re-alarm and shelve expiry driven by a clock. Random
rules, random process input (true / false / None for Bad), random waits and random
operator actions run through both; after every step the two must agree and the
invariants of the table must hold.

Where the table is silent, the model takes what docs/alarms.md decides (marked BEYOND THE TABLE):
the latched alarm that comes back, the order of the removals, and a repeated acknowledge in C or
LA being accepted without a move.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alarms import state_model as sm
from domain.alarms.records import ActionRefused, AlarmRecord, AlarmState, AlarmTransition
from domain.alarms.state_model import AlarmRules

T0 = 1_700_000_000_000
REEVALUATE = "re-evaluated"  # T13 / T14 / T15 targets: A or B by the condition, or a removal still in force

# ---- the reference model ---------------------------------------------------------------------

TABLE: dict[tuple[str, str], tuple[str, str]] = {
    ("A", "active"): ("T1", "B"),
    ("B", "acknowledge"): ("T2", "C"),
    ("B", "clear"): ("T3", "D"),
    ("B", "clear latching"): ("T4", "LU"),
    ("C", "clear"): ("T5", "A"),
    ("C", "clear latching"): ("T6", "LA"),
    ("C", "re-alarm"): ("T7", "B"),
    ("D", "acknowledge"): ("T8", "A"),
    ("D", "active"): ("T9", "B"),
    ("LU", "acknowledge"): ("T10", "LA"),
    ("LA", "reset"): ("T11", "A"),
    **{(state, "shelve"): ("T12", "E") for state in ("A", "B", "C", "D")},
    ("E", "shelve ends"): ("T13", REEVALUATE),
    **{(state, "suppression starts"): ("T14", "F") for state in ("A", "B", "C", "D", "LU", "LA", "E")},
    ("F", "suppression ends"): ("T14", REEVALUATE),
    **{(state, "out of service"): ("T15", "G") for state in ("A", "B", "C", "D", "LU", "LA", "E", "F")},
    ("G", "return to service"): ("T15", REEVALUATE),
    # BEYOND THE TABLE (docs/alarms.md): a latched alarm whose condition comes back goes to B,
    # journalled as T9 from LU (still unacknowledged) and as T1 from LA (a new activation).
    ("LU", "active"): ("T9", "B"),
    ("LA", "active"): ("T1", "B"),
}
REMOVED = ("E", "F", "G")
UNACKNOWLEDGED = ("B", "D", "LU")
ANNUNCIATED_ONLY = ("C", "D", "LU", "LA")  # never entered straight from E, F or G


class Refused(Exception):
    pass


@dataclass
class Model:
    on_delay_ms: int
    off_delay_ms: int
    realarm_ms: int | None
    latching: bool
    comment_required: bool
    max_shelve_ms: int
    now_ms: int = T0
    state: str = "A"
    since_ms: int = T0
    active: bool = False          # the condition after its delays
    raw: bool | None = None       # the latest input; None: Bad / no input
    pending_since_ms: int | None = None
    shelved: bool = False
    shelve_until_ms: int | None = None
    one_shot: bool = False
    suppressed: bool = False
    out_of_service: bool = False

    # -- moves
    def _move(self, event: str) -> list[tuple[str, str, str]]:
        """Look the event up in the table: no entry, no move."""
        entry = TABLE.get((self.state, event))
        if entry is None:
            return []
        label, target = entry
        if target == REEVALUATE:
            target = self._reevaluated()
        moved = [(label, self.state, target)]
        self.state, self.since_ms = target, self.now_ms
        return moved

    def _reevaluated(self) -> str:
        if self.out_of_service:
            return "G"
        if self.suppressed:
            return "F"
        if self.shelved:
            return "E"
        return "B" if self.active else "A"

    def _end_shelve(self) -> list:
        self.shelved, self.shelve_until_ms, self.one_shot = False, None, False
        if self.state != "E":  # beneath F or G the state stays; the shelve's end is still journalled
            return [("T13", self.state, self.state)]
        return self._move("shelve ends")

    # -- the process side
    def _delays(self) -> list:
        if self.raw is None:
            self.pending_since_ms = None  # Bad input: nothing is judged, the state holds, a delay restarts
            return []
        if self.raw == self.active:
            self.pending_since_ms = None
            return []
        if self.pending_since_ms is None:
            self.pending_since_ms = self.now_ms
        delay_ms = self.on_delay_ms if self.raw else self.off_delay_ms
        if self.now_ms - self.pending_since_ms < delay_ms:
            return []
        self.pending_since_ms = None
        self.active = self.raw
        if not self.active and self.shelved and self.one_shot:
            return self._end_shelve()  # T13: a one-shot shelve ends when the condition clears
        if self.state in REMOVED:
            return []  # tracked, not annunciated
        return self._move("active" if self.active else ("clear latching" if self.latching else "clear"))

    def input(self, raw: bool | None) -> list:
        self.raw = raw
        return self._delays()

    def wait(self, ms: int) -> list:
        """Time passes; then, as the engine's tick does: the delays, then shelve end or re-alarm."""
        self.now_ms += ms
        moved = self._delays()
        if self.shelved and self.now_ms >= self.shelve_until_ms:
            return moved + self._end_shelve()
        if self.state == "C" and self.realarm_ms is not None and self.now_ms - self.since_ms >= self.realarm_ms:
            moved += self._move("re-alarm")
        return moved

    def suppression(self, on: bool) -> list:
        if on == self.suppressed:
            return []
        self.suppressed = on
        if self.out_of_service:
            return []  # BEYOND THE TABLE: out of service is the stronger removal; the flag waits beneath it
        return self._move("suppression starts" if on else "suppression ends")

    # -- operator actions: Refused when the table (or the rules) do not allow them
    def acknowledge(self, comment: str | None) -> list:
        if self.state in ("C", "LA"):
            return []  # nothing unacknowledged: a repeat is harmless, no move
        if (self.state, "acknowledge") not in TABLE or (self.comment_required and not comment):
            raise Refused
        return self._move("acknowledge")

    def reset(self) -> list:
        if (self.state, "reset") not in TABLE:
            raise Refused
        return self._move("reset")

    def shelve(self, duration_s: float | None, one_shot: bool, comment: str | None) -> list:
        if (self.state, "shelve") not in TABLE or not comment:
            raise Refused
        if duration_s is None and not one_shot:
            raise Refused
        duration_ms = self.max_shelve_ms if duration_s is None else int(duration_s * 1000)
        if not 0 < duration_ms <= self.max_shelve_ms:
            raise Refused
        self.shelved, self.shelve_until_ms, self.one_shot = True, self.now_ms + duration_ms, one_shot
        return self._move("shelve")

    def unshelve(self) -> list:
        if not self.shelved:
            raise Refused
        return self._end_shelve()

    def remove_from_service(self, comment: str | None) -> list:
        if self.out_of_service or not comment:
            raise Refused
        self.out_of_service = True
        return self._move("out of service")

    def return_to_service(self) -> list:
        if not self.out_of_service:
            raise Refused
        self.out_of_service = False
        return self._move("return to service")


# ---- the same steps on state_model.py --------------------------------------------------------

USER = "olga"


def run_real(step: tuple, record: AlarmRecord, rules: AlarmRules, now_ms: int, raw: bool | None):
    """One step on the real state model; returns (record, transitions, now_ms, raw)."""
    kind = step[0]
    if kind == "input":
        raw = step[1]
        record, events = sm.evaluate(record, rules, raw, _value(raw), now_ms)
        return record, events, now_ms, raw
    if kind == "wait":
        now_ms += step[1]
        record, first = sm.evaluate(record, rules, raw, _value(raw), now_ms)
        record, second = sm.on_time(record, rules, now_ms)
        return record, first + second, now_ms, raw
    if kind == "suppression":
        record, events = sm.set_design_suppression(record, step[1], now_ms)
    elif kind == "acknowledge":
        record, events = sm.acknowledge(record, rules, USER, now_ms, step[1])
    elif kind == "reset":
        record, events = sm.reset(record, USER, now_ms)
    elif kind == "shelve":
        _, duration_s, one_shot, comment = step
        record, events = sm.shelve(record, rules, USER, now_ms, comment, duration_s=duration_s, one_shot=one_shot)
    elif kind == "unshelve":
        record, events = sm.unshelve(record, USER, now_ms)
    elif kind == "remove_from_service":
        record, events = sm.remove_from_service(record, USER, now_ms, step[1])
    elif kind == "return_to_service":
        record, events = sm.return_to_service(record, USER, now_ms)
    else:
        raise AssertionError(step)
    return record, events, now_ms, raw


def run_model(step: tuple, model: Model) -> list:
    kind, args = step[0], step[1:]
    method = {"input": model.input, "wait": model.wait, "suppression": model.suppression,
              "acknowledge": model.acknowledge, "reset": model.reset, "shelve": model.shelve,
              "unshelve": model.unshelve, "remove_from_service": model.remove_from_service,
              "return_to_service": model.return_to_service}[kind]
    return method(*args)


def _value(raw: bool | None) -> float | None:
    return None if raw is None else (90.0 if raw else 10.0)


# ---- random rules and steps ------------------------------------------------------------------

rules_strategy = st.builds(
    AlarmRules,
    on_delay_s=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    off_delay_s=st.sampled_from([0.0, 0.5, 2.0]),
    realarm_s=st.sampled_from([None, 1.0, 2.0, 5.0]),
    latching=st.booleans(),
    comment_required=st.booleans(),
    max_shelve_s=st.sampled_from([1.0, 3.0, 10.0]),
)
# Mostly process input, time and valid operator input, so that runs reach deep into the table;
# the removals (which hide everything else) and refused input less often.
comments = st.sampled_from(["checked on site"] * 4 + [None, ""])
STEPS = {
    "input": st.tuples(st.just("input"), st.sampled_from([True, True, False, False, None])),
    "wait": st.tuples(st.just("wait"), st.one_of(st.integers(0, 6000), st.sampled_from([1, 499, 500, 1000, 3000]))),
    "acknowledge": st.tuples(st.just("acknowledge"), comments),
    "reset": st.just(("reset",)),
    # Durations around every max_shelve_s drawn below (1, 3, 10 s): at, just over, and none.
    "shelve": st.tuples(st.just("shelve"), st.sampled_from([None, 0.0, 0.5, 1.0, 1.5, 3.0, 3.5, 10.0, 10.5]),
                        st.booleans(), comments),
    "unshelve": st.just(("unshelve",)),
    "suppression": st.tuples(st.just("suppression"), st.booleans()),
    "remove_from_service": st.tuples(st.just("remove_from_service"), comments),
    "return_to_service": st.just(("return_to_service",)),
}
STEP_WEIGHTS = {"input": 8, "wait": 8, "acknowledge": 4, "reset": 2, "shelve": 1, "unshelve": 1, "suppression": 1,
                "remove_from_service": 1, "return_to_service": 1}
step_strategy = st.sampled_from([kind for kind, weight in STEP_WEIGHTS.items() for _ in range(weight)]).flatmap(
    STEPS.get)
# Runs of up to 80 steps with a length drawn evenly (plain st.lists mostly draws short ones), that
# still shrink to the shortest failing run.
steps_strategy = st.integers(0, 80).flatmap(lambda length: st.lists(step_strategy, min_size=length, max_size=length))


def model_for(rules: AlarmRules) -> Model:
    return Model(
        on_delay_ms=int(rules.on_delay_s * 1000), off_delay_ms=int(rules.off_delay_s * 1000),
        realarm_ms=None if rules.realarm_s is None else int(rules.realarm_s * 1000), latching=rules.latching,
        comment_required=rules.comment_required, max_shelve_ms=int(rules.max_shelve_s * 1000),
    )


# ---- the property ----------------------------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(rules=rules_strategy, steps=steps_strategy)
def test_state_model_follows_the_isa_18_2_table(rules, steps):
    model = model_for(rules)
    record = AlarmRecord("R1.temp:high", "R1.temp", "high", 2, "R1 high", "Reactor", state_since_ms=T0)
    now_ms, raw = T0, None
    for number, step in enumerate(steps):
        where = f"step {number} {step}"
        before = record  # frozen: a refused action (an exception) leaves it as it was
        try:
            expected = run_model(step, model)
            model_refused = False
        except Refused:
            expected, model_refused = [], True
        try:
            record, events, now_ms, raw = run_real(step, record, rules, now_ms, raw)
            refused = False
        except ActionRefused as refusal:
            assert str(refusal), f"{where}: a refusal without a reason"
            events, refused = [], True
        assert refused == model_refused, f"{where}: refused {refused}, the table says {model_refused}"
        assert now_ms == model.now_ms
        assert record.state.value == model.state, f"{where}: state {record.state.value}, the table says {model.state}"
        assert record.condition_active == model.active, f"{where}: condition_active"
        _check_transitions(where, before, record, events, expected, now_ms)
        by = None if step[0] in ("input", "wait", "suppression") else USER
        assert all(e.user == by for e in events), f"{where}: journalled as done by {[e.user for e in events]}"
        _check_invariants(where, record)
        _check_next_deadline(where, record, rules, model)


def _check_transitions(where: str, before: AlarmRecord, after: AlarmRecord, events: list[AlarmTransition],
                       expected: list, now_ms: int) -> None:
    moves = [(e.transition, e.from_state.value, e.to_state.value) for e in events]
    assert moves == expected, f"{where}: transitions {moves}, the table says {expected}"
    state = before.state
    for event in events:
        assert event.from_state is state, f"{where}: {event.transition} starts from {event.from_state}, not {state}"
        assert not (event.from_state.is_removed and event.to_state.value in ANNUNCIATED_ONLY), \
            f"{where}: {event.transition} {event.from_state.value} -> {event.to_state.value}"
        assert event.time_ms == now_ms and event.alarm_id == after.alarm_id
        state = event.to_state
    assert state is after.state, f"{where}: the transitions end in {state.value}, the record is {after.state.value}"
    if not events or all(e.from_state is e.to_state for e in events):
        assert after.state is before.state and after.state_since_ms == before.state_since_ms
    else:
        assert after.state_since_ms == now_ms


def _check_invariants(where: str, record: AlarmRecord) -> None:
    state = record.state
    assert state.is_unacknowledged == (state.value in UNACKNOWLEDGED), where
    if state.value in UNACKNOWLEDGED:
        assert record.acknowledged_ms is None, f"{where}: {state.value} carries an acknowledgement"
    if state in (AlarmState.ACK_ACTIVE, AlarmState.LATCHED_ACK):
        assert record.acknowledged_ms is not None, f"{where}: {state.value} without an acknowledgement"
    assert state.is_removed == (state.value in REMOVED), where
    if state.is_removed:
        assert not state.is_shown, f"{where}: {state.value} is annunciated"
    # The state letter is the strongest removal in force, and no removal means no flag.
    strongest = "G" if record.out_of_service else "F" if record.suppressed else "E" if record.is_shelved else None
    if strongest is None:
        assert not state.is_removed, f"{where}: {state.value} with no removal in force"
    else:
        assert state.value == strongest, f"{where}: {state.value}, but the strongest removal is {strongest}"
    if state in (AlarmState.UNACK_ACTIVE, AlarmState.ACK_ACTIVE):
        assert record.condition_active, f"{where}: {state.value} with the condition clear"
    if state in (AlarmState.RETURNED_UNACK, AlarmState.LATCHED_UNACK, AlarmState.LATCHED_ACK):
        assert not record.condition_active, f"{where}: {state.value} with the condition active"


def _check_next_deadline(where: str, record: AlarmRecord, rules: AlarmRules, model: Model) -> None:
    """Nothing time alone does may happen before next_deadline_ms (the engine sleeps until then)."""
    deadline = sm.next_deadline_ms(record, rules)
    quiet_until = (model.now_ms + 10**9) if deadline is None else deadline - 1
    if quiet_until < model.now_ms:
        return
    probe = replace(model)  # every field is a plain value
    state, active = probe.state, probe.active
    moved = probe.wait(quiet_until - probe.now_ms)
    assert (moved, probe.state, probe.active) == ([], state, active), \
        f"{where}: next_deadline_ms {deadline} is too late: by {quiet_until} the table has {moved}"
