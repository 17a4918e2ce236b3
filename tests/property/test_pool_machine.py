"""The pool under a hypothesis state machine: checkout and init races, hunted.

The machine is the public one, :func:`nursemaid.testing.pool_state_machine` (it began
in this file; it lives in ``nursemaid.testing`` so our tests and users' tests run one
implementation). Each example is one real Trio run of a real pool: clients arrive,
check in, check in with an error, start requests, call ``execute``, are cancelled
while waiting or mid-request; workers crash, or fail or hang their handshake; time
passes. After every step: no worker leased twice, leased + idle + starting <= size,
no idle worker while a client waits, FIFO service, every reply reaches its own
request, every transition follows the lifecycle table; at the end every client was
served, timed out or cancelled, and closing left no worker alive.

Here it runs on the pool shapes whose races differ: a lazy pool of one (every
client contends for one starting worker), a lazy pool of two, an eager pool of
three; many examples on scripted in-process workers (the ``ci`` or ``soak``
profile decides how many), and a few on real processes.

Seeded mutations of the core were caught: a cancelled waiter left in the queue
(at once), waiters served last-come-first (in one to three of the machines per
``ci`` run, and always once hypothesis's database holds the example).
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from nursemaid.testing import PortTarget, pool_state_machine

test_lazy_pool_of_one = pool_state_machine(size=1, lazy=True).test()
test_lazy_pool_of_two = pool_state_machine(size=2, lazy=True).test()
test_eager_pool_of_three = pool_state_machine(size=3, lazy=False).test()
test_lazy_pool_of_two_ports = pytest.mark.slow(
    pool_state_machine(PortTarget, size=2, lazy=True).test(settings(max_examples=4))
)


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
