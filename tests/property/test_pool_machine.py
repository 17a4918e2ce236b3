"""The pool under a hypothesis state machine: checkout and init races, hunted.

The machine is the public one, :func:`nursemaid.testing.pool_state_machine` (it began
in this file; it lives in ``nursemaid.testing`` so our tests and users' tests run one
implementation). Each example is one real Trio run of a real pool: clients arrive,
check in, check in with an error, start requests, call ``execute``, are cancelled
while waiting or mid-request; workers crash, or fail or hang their handshake; time
passes. After every step: no worker leased twice, leased + idle + checking +
starting <= size,
no idle worker while a client waits, FIFO service, every reply reaches its own
request, every transition follows the lifecycle table; at the end every client was
served, timed out or cancelled, and closing left no worker alive.

Here it runs on the pool shapes whose races differ: a lazy pool of one (every
client contends for one starting worker), a lazy pool of two, an eager pool of
three; many examples on scripted in-process workers (the ``ci`` or ``soak``
profile decides how many), and a few on real processes.

Two more shapes run with ``scripted_checkout=True``: the pool's ``handle_checkout``
follows a script that keeps workers, removes them, returns a value outside its
contract, raises, or takes long enough to outlast a client's checkout timeout or to
be cancelled in. The invariants then also say that a refused or cut-short worker is
stopped, never served, and replaced, that a refused client queues again at the back,
and that no client is served past its checkout timeout.

Seeded mutations of the core were caught: a cancelled waiter left in the queue
(at once), waiters served last-come-first (in one to three of the machines per
``ci`` run, and always once hypothesis's database holds the example). The pool
before ``handle_checkout`` ran inside the checkout's deadline and handed back the
worker of a client cancelled in it: one of the two in-process hooked machines
failed in each of five ci-sized runs (a client served 2 s into its 0.5 s timeout,
or a refused worker still LEASED).
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from nursemaid.testing import CheckoutAnswer, PoolWorld, PortTarget, pool_state_machine
from nursemaid.workers import Transition, WorkerEvent

test_lazy_pool_of_one = pool_state_machine(size=1, lazy=True).test()
test_lazy_pool_of_two = pool_state_machine(size=2, lazy=True).test()


def test_eager_pool_of_three() -> None:
    machine = pool_state_machine(size=3, lazy=False)
    checks: list[Transition] = []

    @machine.teardown
    async def count(world: PoolWorld) -> None:
        checks.extend(
            t for t in world.log if isinstance(t, Transition) and t.event is WorkerEvent.CHECK
        )

    machine.test()()
    # The clock steps (up to 40 s) pass the machine's 5 s in-process health_interval, so
    # health checks ran among the clients and faults, under every invariant.
    assert checks


test_lazy_pool_of_two_ports = pytest.mark.slow(
    pool_state_machine(PortTarget, size=2, lazy=True).test(settings(max_examples=4))
)
test_eager_pool_of_two_with_a_checkout_hook = pool_state_machine(
    size=2, lazy=False, scripted_checkout=True
).test()
test_eager_pool_of_two_ports_with_a_checkout_hook = pytest.mark.slow(
    pool_state_machine(PortTarget, size=2, scripted_checkout=True).test(settings(max_examples=3))
)


def test_lazy_pool_of_two_with_a_checkout_hook() -> None:
    machine = pool_state_machine(size=2, lazy=True, scripted_checkout=True)
    refused: list[int] = []
    served_after_a_refusal: list[int] = []

    @machine.teardown
    async def count(world: PoolWorld) -> None:
        refused.extend(world.removed_at_checkout)
        served_after_a_refusal.extend(
            c.number for c in world.clients if c.refusals and c.worker is not None
        )

    machine.test()()
    # The hook really refused workers, and refused clients were served in the end
    # (8 to 52 of them in the ci profile's 60 examples, in trials).
    assert refused
    assert served_after_a_refusal


@pytest.mark.parametrize("lazy", [True, False])
def test_machine_has_every_rule_the_issue_asks_for(lazy: bool) -> None:
    machine = pool_state_machine(size=2, lazy=lazy)
    assert {rule.name for rule in machine.rules} >= {
        "arrive",
        "checkin",
        "checkin_with_error",
        "start_request",
        "execute",
        "cancel_waiter",
        "cancel_lease",
        "crash_worker",
        "script_handshakes",
        "advance_clock",
    }


def test_only_the_scripted_checkout_machine_has_the_checkout_script_rules() -> None:
    plain = pool_state_machine(size=2)
    hooked = pool_state_machine(size=2, scripted_checkout=True)
    scripted = {"script_checkouts", "arrive_scripted"}
    assert not scripted & {rule.name for rule in plain.rules}
    assert scripted <= {rule.name for rule in hooked.rules}
    assert repr(CheckoutAnswer.REMOVE) == "CheckoutAnswer.REMOVE"  # steps replay as Python
