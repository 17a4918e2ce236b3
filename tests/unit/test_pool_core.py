"""The pool's pure core: decisions checked without Trio, through a recording shell."""

from __future__ import annotations

import math

import pytest

from nursemaid import StartError
from nursemaid.workers._lifecycle import Transition, WorkerState
from nursemaid.workers._pool_core import (
    Backoff,
    PoolCore,
    PoolPhase,
    SessionMoved,
    Waiter,
    WorkerSlot,
    bare_message,
    least_bound,
)


class Recorder:
    """A PoolEffects that records every call as a tuple."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.spawned: list[WorkerSlot] = []

    def grant(self, waiter: Waiter, slot: WorkerSlot) -> None:
        self.calls.append(("grant", waiter, slot.id))

    def spawn(self, slot: WorkerSlot, delay: float) -> None:
        self.spawned.append(slot)
        self.calls.append(("spawn", slot.id, delay))

    def stop(self, slot: WorkerSlot) -> None:
        self.calls.append(("stop", slot.id))

    def reject(self, waiter: Waiter) -> None:
        self.calls.append(("reject", waiter))

    def time_out(self, waiter: Waiter) -> None:
        self.calls.append(("time_out", waiter))

    def give_up(self, error: StartError) -> None:
        self.calls.append(("give_up", error))


def make(size: int = 2, **options: object) -> tuple[PoolCore, Recorder]:
    effects = Recorder()
    core = PoolCore(size, effects, **options)  # type: ignore[arg-type]
    return core, effects


def bring_up(core: PoolCore, slot: WorkerSlot, now: float = 0.0) -> None:
    assert core.spawned(slot, now)
    assert core.ready(slot, now)


def open_ready(size: int = 2, **options: object) -> tuple[PoolCore, Recorder]:
    core, effects = make(size, **options)
    core.open(0.0)
    for slot in list(effects.spawned):
        bring_up(core, slot)
    core.mark_open()
    effects.calls.clear()
    return core, effects


def error(text: str = "boom") -> StartError:
    return StartError(text, stderr_tail="last words\n")


def test_eager_pool_spawns_size_workers_at_open() -> None:
    core, effects = make(3)
    core.open(0.0)
    assert [c[0] for c in effects.calls] == ["spawn"] * 3
    assert core.starting == 3
    assert core.active == 3


def test_lazy_pool_spawns_nothing_until_a_client_waits() -> None:
    core, effects = make(3, lazy=True)
    core.open(0.0)
    assert effects.calls == []
    assert core.checkout_nowait(None, 0.0) is None
    core.enqueue(Waiter(None), 0.0)
    assert [c[0] for c in effects.calls] == ["spawn"]


def test_lazy_pool_never_spawns_more_than_size_for_simultaneous_clients() -> None:
    core, effects = make(2, lazy=True)
    core.open(0.0)
    waiters = [Waiter(None) for _ in range(10)]
    for w in waiters:
        core.enqueue(w, 0.0)
    assert len(effects.spawned) == 2
    for slot in effects.spawned:
        bring_up(core, slot)
    grants = [c for c in effects.calls if c[0] == "grant"]
    assert [g[1] for g in grants] == waiters[:2]  # first come, first served


def test_idle_worker_is_taken_without_queueing() -> None:
    core, _ = open_ready(2)
    slot = core.checkout_nowait(None, 1.0)
    assert slot is not None
    assert slot.state is WorkerState.LEASED
    assert core.leased == 1
    assert len(core.idle) == 1


def test_idle_workers_are_reused_last_in_first_out() -> None:
    core, _ = open_ready(2)
    a = core.checkout_nowait(None, 0.0)
    b = core.checkout_nowait(None, 0.0)
    assert a is not None
    assert b is not None
    for slot in (a, b):
        assert core.begin_checkin(slot, 1.0)
        core.finish_checkin(slot, None, 1.0)
    assert core.checkout_nowait(None, 2.0) is b


def test_checkin_hands_the_worker_to_the_first_waiter() -> None:
    core, effects = open_ready(1)
    slot = core.checkout_nowait(None, 0.0)
    assert slot is not None
    first, second = Waiter(None), Waiter(None)
    core.enqueue(first, 1.0)
    core.enqueue(second, 2.0)
    core.begin_checkin(slot, 3.0)
    core.finish_checkin(slot, None, 3.0)
    assert effects.calls == [("grant", first, slot.id)]
    assert slot.state is WorkerState.LEASED
    assert list(core.waiters) == [second]
    assert core.wait_count == 1
    assert core.wait_max == 2.0


def test_expire_times_out_the_waiters_whose_time_has_come_and_names_the_next() -> None:
    # The pool's checkout_timeout is 2.0: expiries grow in queue order. A waiter
    # whose deadline the shell keeps itself (no expires) is passed over.
    core, effects = open_ready(1)
    assert core.checkout_nowait(None, 0.0) is not None
    first, own, second, third = Waiter(None), Waiter(None), Waiter(None), Waiter(None)
    core.enqueue(first, 0.0, 2.0)
    core.enqueue(own, 0.1)
    core.enqueue(second, 0.5, 2.5)
    core.enqueue(third, 1.0, 3.0)
    assert list(core.timed) == [first, second, third]  # the own-timeout one is not
    assert core.expire(1.9) == 2.0
    assert effects.calls == []
    assert core.expire(2.5) == 3.0
    assert effects.calls == [("time_out", first), ("time_out", second)]
    assert list(core.waiters) == [own, third]
    assert core.expire(3.0) == math.inf
    assert core.expire(100.0) == math.inf
    assert list(core.waiters) == [own]
    assert effects.calls[2:] == [("time_out", third)]


def test_expire_on_an_empty_queue_names_no_next() -> None:
    core, _ = open_ready(1)
    assert core.expire(0.0) == math.inf


def test_the_timed_waiters_follow_the_queue_through_serve_cancel_and_close() -> None:
    # expire() reads only `timed`; a waiter that left the queue must leave it too.
    core, _ = open_ready(1)
    slot = core.checkout_nowait(None, 0.0)
    assert slot is not None
    served, cancelled, own, rejected = Waiter(None), Waiter(None), Waiter(None), Waiter(None)
    core.enqueue(served, 0.0, 5.0)
    core.enqueue(cancelled, 0.0, 5.0)
    core.enqueue(own, 0.0)
    core.enqueue(rejected, 0.0, 5.0)
    core.begin_checkin(slot, 1.0)
    core.finish_checkin(slot, None, 1.0)
    core.cancel(cancelled)
    assert list(core.timed) == [rejected]
    core.close(2.0)
    assert (list(core.waiters), list(core.timed)) == ([], [])


def test_a_worker_freed_at_a_waiters_deadline_times_it_out_and_serves_the_next() -> None:
    # A tie goes to the deadline, as with a cancel scope: the outcome must not
    # depend on which of two tasks Trio runs first.
    core, effects = open_ready(1)
    slot = core.checkout_nowait(None, 0.0)
    assert slot is not None
    due, later = Waiter(None), Waiter(None)
    core.enqueue(due, 0.0, 2.0)
    core.enqueue(later, 1.0, 3.0)
    core.begin_checkin(slot, 2.0)
    core.finish_checkin(slot, None, 2.0)
    assert effects.calls == [("time_out", due), ("grant", later, slot.id)]
    assert list(core.waiters) == []


def test_cancelled_waiter_leaves_the_queue_at_once() -> None:
    core, effects = open_ready(1)
    slot = core.checkout_nowait(None, 0.0)
    assert slot is not None
    gone, stays = Waiter(None), Waiter(None)
    core.enqueue(gone, 0.0)
    core.enqueue(stays, 0.0)
    core.cancel(gone)
    assert list(core.waiters) == [stays]
    core.begin_checkin(slot, 1.0)
    core.finish_checkin(slot, None, 1.0)
    assert effects.calls == [("grant", stays, slot.id)]


def test_removed_worker_is_stopped_and_replaced() -> None:
    core, effects = open_ready(1)
    slot = core.checkout_nowait(None, 0.0)
    assert slot is not None
    core.begin_checkin(slot, 1.0)
    core.finish_checkin(slot, "its lease ended with ValueError", 1.0)
    assert slot.state is WorkerState.STOPPING
    assert effects.calls[0] == ("stop", slot.id)
    assert effects.calls[1][0] == "spawn"
    assert core.restarts == 1
    assert core.active == 1  # the replacement; the stopping one does not count


def test_max_uses_recycles_a_worker_at_checkin() -> None:
    core, effects = open_ready(1, max_uses=2)
    for _ in range(2):
        slot = core.checkout_nowait(None, 0.0)
        assert slot is not None
        core.begin_checkin(slot, 0.0)
        core.finish_checkin(slot, None, 0.0)
    assert slot.state is WorkerState.STOPPING
    assert ("stop", slot.id) in effects.calls


def test_crash_of_idle_worker_replaces_it_without_delay() -> None:
    core, effects = open_ready(2)
    slot = core.idle[-1]
    core.crashed(slot, "exited with status 1", error(), 1.0)
    assert slot.state is WorkerState.FAILED
    assert slot not in core.idle
    assert effects.calls[-1][0] == "spawn"
    assert effects.calls[-1][2] == 0.0


def test_failed_starts_back_off_exponentially() -> None:
    core, effects = make(1, intensity=10, period=1000.0, backoff=Backoff(0.5, 3.0))
    core.open(0.0)
    delays = []
    for t in range(5):
        slot = effects.spawned[-1]
        core.init_failed(slot, "no pong", error(), float(t))
        delays.append(effects.calls[-1][2])
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_program_that_never_starts_gives_up_with_start_error() -> None:
    core, effects = make(1, intensity=3, period=1.0)
    core.open(0.0)
    for t in range(4):
        core.init_failed(effects.spawned[-1], "no pong", error(), 10.0 * t)
    gave_up = [c for c in effects.calls if c[0] == "give_up"]
    assert len(gave_up) == 1
    final = gave_up[0][1]
    assert isinstance(final, StartError)
    assert "4 worker starts failed in a row" in str(final)
    assert final.stderr_tail == "last words\n"
    assert core.phase is PoolPhase.CLOSING
    assert len(effects.spawned) == 4  # no fifth attempt


def test_crashes_within_the_window_give_up() -> None:
    core, effects = open_ready(1, intensity=2, period=5.0)
    for t in range(3):
        core.crashed(effects.spawned[-1] if t else core.idle[-1], "died", error(), float(t))
        if t < 2:
            bring_up(core, effects.spawned[-1], float(t))
    assert any(c[0] == "give_up" for c in effects.calls)


def test_a_success_resets_the_count_of_failed_starts() -> None:
    core, effects = make(1, intensity=2, period=0.5)
    core.open(0.0)
    for t in range(6):
        core.init_failed(effects.spawned[-1], "no pong", error(), 10.0 * t)
        bring_up(core, effects.spawned[-1], 10.0 * t + 1)
        core.crashed(core.idle[-1], "died", error(), 10.0 * t + 2)
    assert not any(c[0] == "give_up" for c in effects.calls)


def test_session_sticks_to_its_worker_and_waits_for_it() -> None:
    core, effects = open_ready(2)
    first = core.checkout_nowait("s", 0.0)
    assert first is not None
    core.begin_checkin(first, 0.0)
    core.finish_checkin(first, None, 0.0)
    spare = core.checkout_nowait(None, 0.0)  # the worker with no session, first
    other = core.checkout_nowait(None, 0.0)  # then the session's, the only one left
    assert other is first
    assert spare is not None
    core.begin_checkin(spare, 0.0)
    core.finish_checkin(spare, None, 0.0)
    # The session's worker is busy: the session waits although a worker is idle.
    assert core.checkout_nowait("s", 0.0) is None
    waiter = Waiter("s")
    core.enqueue(waiter, 0.0)
    assert waiter.bound == first.id
    core.begin_checkin(first, 1.0)
    core.finish_checkin(first, None, 1.0)
    assert effects.calls[-1] == ("grant", waiter, first.id)


def test_session_moves_when_its_worker_dies_and_says_so() -> None:
    seen: list[object] = []
    core, effects = open_ready(2, subscribers=[seen.append])
    first = core.checkout_nowait("s", 0.0)
    assert first is not None
    core.begin_checkin(first, 0.0)
    core.finish_checkin(first, None, 0.0)
    core.crashed(first, "died", error(), 1.0)
    bring_up(core, effects.spawned[-1], 1.0)
    second = core.checkout_nowait("s", 2.0)
    assert second is not None
    assert second.id != first.id
    moved = [e for e in seen if isinstance(e, SessionMoved)]
    assert moved == [SessionMoved("s", first.id, second.id, 2.0)]


def test_a_new_sessions_queued_clients_all_wait_for_the_worker_it_got_first() -> None:
    # The seed of this test: a lazy pool's first two checkouts of one new session
    # each started a worker, and the second client, served by the second worker,
    # moved the session off the first while the first still held it (one session
    # on two workers at once, and a SessionMoved for a worker that never died).
    seen: list[object] = []
    core, effects = make(2, lazy=True, subscribers=[seen.append])
    core.open(0.0)
    core.mark_open()
    first, second = Waiter("s"), Waiter("s")
    core.enqueue(first, 0.0)
    core.enqueue(second, 0.0)
    assert len(effects.spawned) == 1  # one session, one worker: it runs on one at a time
    (a,) = effects.spawned
    bring_up(core, a, 1.0)
    assert first.slot is a
    assert second.bound == a.id  # the session's worker now: wait for it
    assert second.slot is None
    core.begin_checkin(a, 2.0)
    core.finish_checkin(a, None, 2.0)
    assert second.slot is a
    assert not [e for e in seen if isinstance(e, SessionMoved)]


def test_waiter_bound_to_a_dead_worker_takes_any_idle_worker() -> None:
    core, effects = open_ready(2)
    a = core.checkout_nowait("s", 0.0)
    assert a is not None
    waiter = Waiter("s")
    core.enqueue(waiter, 0.0)
    assert waiter.bound == a.id
    core.crashed(a, "died", error(), 1.0)
    assert effects.calls[0][0] == "grant"
    assert effects.calls[0][1] is waiter


def test_close_rejects_waiters_and_stops_idle_but_not_leased_workers() -> None:
    core, effects = open_ready(2)
    leased = core.checkout_nowait(None, 0.0)
    idle = core.idle[-1]
    assert leased is not None
    core.checkout_nowait(None, 0.0)
    core.begin_checkin(idle, 0.0)
    core.finish_checkin(idle, None, 0.0)
    waiter = Waiter(None)
    core.close(1.0)
    assert ("stop", idle.id) in effects.calls
    assert leased.state is WorkerState.LEASED
    core.enqueue(waiter, 1.0)  # the shell refuses before this; the core spawns nothing
    assert not any(c[0] == "spawn" for c in effects.calls)
    core.begin_checkin(leased, 2.0)
    core.finish_checkin(leased, None, 2.0)
    assert leased.state is WorkerState.STOPPING


def test_stop_leased_after_grace_stops_them_without_replacement() -> None:
    core, effects = open_ready(1)
    leased = core.checkout_nowait(None, 0.0)
    assert leased is not None
    core.close(0.0)
    core.stop_leased(5.0)
    assert leased.state is WorkerState.STOPPING
    assert not any(c[0] == "spawn" for c in effects.calls)
    core.exited(leased, 6.0)
    assert leased.state is WorkerState.STOPPED
    assert core.workers == {}


def test_every_transition_is_reported_to_subscribers() -> None:
    seen: list[object] = []
    core, effects = make(1, subscribers=[seen.append])
    core.open(0.0)
    bring_up(core, effects.spawned[0], 0.5)
    slot = core.checkout_nowait(None, 1.0)
    assert slot is not None
    core.begin_checkin(slot, 2.0)
    core.finish_checkin(slot, None, 2.0)
    states = [(t.from_state, t.to_state) for t in seen if isinstance(t, Transition)]
    assert states == [
        (WorkerState.STARTING, WorkerState.HANDSHAKING),
        (WorkerState.HANDSHAKING, WorkerState.IDLE),
        (WorkerState.IDLE, WorkerState.LEASED),
        (WorkerState.LEASED, WorkerState.RETURNING),
        (WorkerState.RETURNING, WorkerState.IDLE),
    ]


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_size_must_be_a_positive_int(size: object) -> None:
    with pytest.raises(ValueError, match=r"pool size must be an int >= 1 \(got "):
        PoolCore(size, Recorder())  # type: ignore[arg-type]


def test_max_uses_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"max_uses must be None or an int >= 1 \(got 0\)"):
        PoolCore(1, Recorder(), max_uses=0)


def test_least_bound_takes_the_idle_worker_with_fewest_sessions_most_recent_first() -> None:
    slots = [WorkerSlot(i, []) for i in range(3)]  # slot 2 was used last
    assert least_bound(slots, {}) is slots[2]
    assert least_bound(slots, {2: 1}) is slots[1]
    assert least_bound(slots, {2: 2, 1: 1, 0: 1}) is slots[1]
    assert least_bound(slots, {2: 1, 1: 1, 0: 1}) is slots[2]


def test_new_sessions_take_the_least_bound_idle_worker_and_plain_clients_the_latest() -> None:
    core, _ = open_ready(3)
    taken = {}
    for session in ("a", "b", "c"):
        slot = core.checkout_nowait(session, 1.0)
        assert slot is not None
        taken[session] = slot.id
        assert core.begin_checkin(slot, 1.0)
        core.finish_checkin(slot, None, 1.0)
    assert sorted(taken.values()) == [0, 1, 2]
    assert core.bound == {0: 1, 1: 1, 2: 1}
    plain = core.checkout_nowait(None, 2.0)
    assert plain is not None
    assert plain.id == taken["c"]  # last in, first out


def test_a_removal_with_a_failure_counts_against_the_window_and_can_give_up() -> None:
    core, effects = open_ready(1, intensity=1)
    for now in (1.0, 2.0):
        slot = core.checkout_nowait(None, now)
        assert slot is not None
        error = StartError(f"handle_checkout removed worker {slot.id}: stale")
        assert core.begin_checkin(slot, now)
        core.finish_checkin(slot, "stale", now, failure=error)
        if now == 1.0:
            bring_up(core, effects.spawned[-1], now)
    gave_up = [call[1] for call in effects.calls if call[0] == "give_up"]
    assert len(gave_up) == 1
    assert str(gave_up[0]) == (
        "pool gave up: 2 worker failures within 5.0 s (more than intensity=1); "
        "last failure: handle_checkout removed worker 1: stale"
    )
    assert core.phase is PoolPhase.CLOSING


def test_bare_message_drops_exactly_the_evidence_the_error_class_appended() -> None:
    error = StartError("worker 1 failed (returncode 7)", returncode=7, stderr_tail="boom\n")
    assert str(error) == "worker 1 failed (returncode 7) (returncode 7)\nlast stderr lines:\nboom"
    assert bare_message(error) == "worker 1 failed (returncode 7)"
    assert bare_message(StartError("plain")) == "plain"


# -- the health check: IDLE -> CHECKING -> IDLE, not a client's lease ---------


def test_a_health_check_takes_an_idle_worker_out_of_reach_without_leasing_it() -> None:
    core, _ = open_ready(2)
    first, second = core.idle
    assert core.begin_check(first, 1.0)
    assert first.state is WorkerState.CHECKING
    assert (len(core.idle), core.checking, core.leased) == (1, 1, 0)
    assert core.checkout_nowait(None, 1.0) is second
    assert core.checkout_nowait(None, 1.0) is None  # the checked worker is not free
    assert (first.uses, core.checkouts) == (0, 1)


def test_a_passed_check_puts_the_worker_back_in_its_place_with_its_idle_time() -> None:
    core, _ = open_ready(3)
    bottom, middle, top = core.idle
    assert core.begin_check(middle, 5.0)
    core.end_check(middle, None, 6.0)
    assert middle.state is WorkerState.IDLE
    assert core.idle == [bottom, middle, top]
    assert middle.idle_since == 0.0  # idle_timeout still counts from its last client
    assert core.checking == 0


def test_a_passed_check_serves_a_client_that_queued_meanwhile() -> None:
    core, effects = open_ready(1)
    (slot,) = core.idle
    assert core.begin_check(slot, 1.0)
    waiter = Waiter(None)
    assert core.checkout_nowait(None, 1.0) is None
    core.enqueue(waiter, 1.0)
    core.end_check(slot, None, 2.0)
    assert ("grant", waiter, slot.id) in effects.calls
    assert slot.state is WorkerState.LEASED
    assert (slot.uses, core.checkouts, core.checking, core.idle) == (1, 1, 0, [])


def test_a_failed_check_replaces_the_worker_without_counting_a_failure() -> None:
    core, effects = open_ready(1, intensity=0)
    (slot,) = core.idle
    assert core.begin_check(slot, 1.0)
    core.end_check(slot, "health check failed: RequestTimeout", 2.0)
    assert slot.state is WorkerState.STOPPING
    assert [c[0] for c in effects.calls] == ["stop", "spawn"]
    assert (core.restarts, core.checking, core.active) == (1, 0, 1)
    assert core.phase is PoolPhase.OPEN  # intensity=0 would have given up on a failure


def test_a_worker_that_crashes_during_its_check_counts_as_a_crash() -> None:
    core, effects = open_ready(1, intensity=0)
    (slot,) = core.idle
    assert core.begin_check(slot, 1.0)
    core.crashed(slot, "exit 139", error(), 2.0)
    assert slot.state is WorkerState.FAILED
    assert core.checking == 0
    assert effects.calls[0][0] == "give_up"
    core.end_check(slot, "health check failed: WorkerCrashed", 2.0)  # late: nothing
    assert slot.state is WorkerState.FAILED


def test_closing_stops_a_worker_under_check_at_once() -> None:
    core, effects = open_ready(1)
    (slot,) = core.idle
    assert core.begin_check(slot, 1.0)
    core.close(2.0)
    assert slot.state is WorkerState.STOPPING
    assert (core.leased, core.checking, core.active) == (0, 0, 0)
    assert effects.calls == [("stop", slot.id)]
    core.end_check(slot, None, 3.0)
    assert slot.state is WorkerState.STOPPING


def test_only_an_idle_worker_can_be_checked() -> None:
    core, _ = open_ready(1)
    slot = core.checkout_nowait(None, 0.0)
    assert slot is not None
    assert not core.begin_check(slot, 1.0)
    assert slot.state is WorkerState.LEASED


def test_a_lazy_pool_starts_one_worker_per_new_session_and_per_sessionless_client() -> None:
    core, effects = make(8, lazy=True)
    core.open(0.0)
    core.mark_open()
    for session in ["s", "s", None, "t", "s", None, "t"]:
        core.enqueue(Waiter(session), 0.0)
    assert len(effects.spawned) == 4  # s, t and two clients without a session
    assert core.starting == 4


def test_a_new_session_whose_first_worker_failed_to_start_gets_another() -> None:
    core, effects = make(2, lazy=True)
    core.open(0.0)
    core.mark_open()
    core.enqueue(Waiter("s"), 0.0)
    core.enqueue(Waiter("s"), 0.0)
    (a,) = effects.spawned
    core.init_failed(a, "exit 1", error(), 1.0)
    assert len(effects.spawned) == 2
    assert effects.spawned[1].state is WorkerState.STARTING


def test_a_worker_ready_meanwhile_does_not_take_a_new_sessions_second_client() -> None:
    seen: list[object] = []
    core, effects = make(3, lazy=True, subscribers=[seen.append])
    core.open(0.0)
    core.mark_open()
    plain, first, second = Waiter(None), Waiter("s"), Waiter("s")
    for waiter in (plain, first, second):
        core.enqueue(waiter, 0.0)
    a, b = effects.spawned  # one for `plain`, one for the session
    core.cancel(plain)
    bring_up(core, a, 1.0)
    assert first.slot is a
    assert second.bound == a.id
    bring_up(core, b, 1.0)  # ready while `second` waits: it must not take it
    assert second.slot is None
    assert core.idle == [b]
    core.begin_checkin(a, 2.0)
    core.finish_checkin(a, None, 2.0)
    assert second.slot is a
    assert not [e for e in seen if isinstance(e, SessionMoved)]


def test_a_check_cut_short_by_the_pools_end_stops_its_worker_without_a_replacement() -> None:
    core, effects = open_ready(1)
    (slot,) = core.idle
    assert core.begin_check(slot, 1.0)
    core.end_check(slot, "health check cancelled with its ping in flight", 2.0, replace=False)
    assert slot.state is WorkerState.STOPPING
    assert effects.calls == [("stop", slot.id)]
    assert core.restarts == 0


def test_a_check_failed_by_the_workers_own_fault_counts_against_the_window() -> None:
    core, effects = open_ready(1, intensity=0)
    (slot,) = core.idle
    assert core.begin_check(slot, 1.0)
    core.end_check(slot, "health check failed: it broke the protocol", 2.0, error=error())
    assert slot.state is WorkerState.STOPPING
    assert [c[0] for c in effects.calls] == ["stop", "give_up"]


def test_a_fresh_replacement_goes_under_the_hot_worker_so_idle_timeout_spares_it() -> None:
    # A replacement on top of the idle stack would take the next client from the
    # worker a client used moments ago, which would then age out under idle_timeout.
    core, effects = open_ready(2)
    hot = core.checkout_nowait(None, 1.0)
    assert hot is not None
    assert core.begin_checkin(hot, 1.1)
    core.finish_checkin(hot, None, 1.1)
    (cold,) = [s for s in core.idle if s is not hot]
    core.retire_idle(cold, "idle for 0.5 s", 1.5)
    fresh = effects.spawned[-1]
    bring_up(core, fresh, 1.6)
    assert core.idle == [fresh, hot]
    assert core.checkout_nowait(None, 1.7) is hot


def test_a_lease_whose_worker_died_still_counts_in_the_lease_time() -> None:
    core, _ = open_ready(1)
    slot = core.checkout_nowait(None, 1.0)
    assert slot is not None
    core.crashed(slot, "exit 9", error("exit 9"), 1.2)
    assert not core.begin_checkin(slot, 1.5)
    assert core.lease_total == 0.5
    assert core.lease_max == 0.5


def test_a_worker_that_leaves_the_pool_leaves_no_session_count_behind() -> None:
    core, _ = open_ready(1)
    slot = core.checkout_nowait("s", 1.0)
    assert slot is not None
    assert core.bound == {slot.id: 1}
    assert core.begin_checkin(slot, 1.1)
    core.finish_checkin(slot, "removed", 1.1)
    assert core.bound == {}
    assert core.sessions == {"s": slot.id}  # kept: its next request says it moved


def test_with_a_checkout_hook_a_session_move_waits_for_the_verdict() -> None:
    seen: list[object] = []
    core, _ = open_ready(3, confirm_moves=True, subscribers=[seen.append])
    first = core.checkout_nowait("s", 1.0)
    assert first is not None
    core.confirm_session(first, 1.0)  # a new session: nothing moved
    assert core.begin_checkin(first, 1.1)
    core.finish_checkin(first, "removed", 1.1)
    refused = core.checkout_nowait("s", 2.0)
    assert refused is not None
    core.refuse_session(refused)  # the session never ran there
    assert core.sessions == {"s": first.id}
    assert refused.id not in core.bound
    assert core.begin_checkin(refused, 2.0)
    core.finish_checkin(refused, "refused", 2.0)
    kept = core.checkout_nowait("s", 3.0)
    assert kept is not None
    assert not [e for e in seen if isinstance(e, SessionMoved)]
    core.confirm_session(kept, 3.0)
    moves = [e for e in seen if isinstance(e, SessionMoved)]
    assert moves == [SessionMoved("s", first.id, kept.id, 3.0)]
    assert core.bound == {kept.id: 1}


def test_a_new_session_whose_first_worker_is_refused_is_bound_to_nothing() -> None:
    core, _ = open_ready(2, confirm_moves=True)
    slot = core.checkout_nowait("s", 1.0)
    assert slot is not None
    core.refuse_session(slot)
    assert core.sessions == {}
    assert core.bound == {}


def test_an_ended_session_is_forgotten_and_its_next_checkout_is_a_new_sessions() -> None:
    seen: list[object] = []
    core, _ = open_ready(2, subscribers=[seen.append])
    slot = core.checkout_nowait("s", 1.0)
    assert slot is not None
    assert core.begin_checkin(slot, 1.1)
    core.finish_checkin(slot, "removed", 1.1)
    core.end_session("s")
    core.end_session("s")  # twice, or never known: nothing happens
    core.end_session("never seen")
    assert core.sessions == {}
    assert core.checkout_nowait("s", 2.0) is not None
    assert not [e for e in seen if isinstance(e, SessionMoved)]


def test_ending_a_live_workers_session_drops_its_count() -> None:
    core, _ = open_ready(2)
    slot = core.checkout_nowait("s", 1.0)
    assert slot is not None
    core.end_session("s")
    assert core.bound == {}


def test_a_client_without_a_session_leaves_a_sessions_worker_to_it_when_another_is_idle() -> None:
    core, _ = open_ready(2)
    bound = core.checkout_nowait("s", 1.0)
    assert bound is not None
    assert core.begin_checkin(bound, 1.1)
    core.finish_checkin(bound, None, 1.1)  # back on top of the idle stack
    assert core.idle[-1] is bound
    plain = core.checkout_nowait(None, 2.0)
    assert plain is not None
    assert plain is not bound
    assert core.checkout_nowait("s", 2.0) is bound  # no wait for its own worker


def test_a_health_check_puts_the_hot_worker_back_on_top_though_a_fresh_one_came_meanwhile() -> None:
    # A fresh worker goes in at the bottom of the idle stack, which shifts positions:
    # the checked worker goes back above the one that was below it, not by index.
    core, _ = make(4, lazy=True)
    core.open(0.0)
    core.mark_open()
    slots = [core._spawn(0.0) for _ in range(3)]
    for slot in slots:
        bring_up(core, slot)
    for t, slot in enumerate(slots, start=1):  # used in turn: the last is the hot one
        core.idle.remove(slot)
        core.idle.append(slot)
        got = core.checkout_nowait(None, float(t))
        assert got is slot
        assert core.begin_checkin(got, float(t))
        core.finish_checkin(got, None, float(t))
    hot = core.idle[-1]
    assert core.begin_check(hot, 5.0)
    bring_up(core, core._spawn(5.0), 5.0)  # a new worker became ready meanwhile
    core.end_check(hot, None, 5.0)
    assert core.idle[-1] is hot
    assert core.checkout_nowait(None, 6.0) is hot


def test_a_ready_worker_lost_by_its_own_fault_no_longer_counts_towards_min_ready() -> None:
    core, _ = open_ready(3, intensity=10)
    crashed, refused, recycled = list(core.idle)
    core.crashed(crashed, "exit 1", error(), 1.0)
    core.remove(refused, "handle_checkout refused it", 1.0, failure=error())
    core.remove(recycled, "max_uses", 1.0)  # the pool's own decision: still counts
    assert (core.ready_once, core.ready_lost) == (3, 2)
