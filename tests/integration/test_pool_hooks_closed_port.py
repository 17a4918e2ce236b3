"""A port that a hook's own request closed is never handed on, and is judged as any.

``handle_checkout`` and ``handle_checkin`` may talk to the worker through
``lease.port``; a request of theirs may close the port: a frame cut by their own
timeout or by the checkout's deadline, or a garbage reply. The hook may catch the
error and return ``Keep()``, but a closed port cannot serve: the worker is
removed and replaced (a garbage reply counted against the restart intensity, as
anywhere), and the ``CheckoutTimeout`` message says what became of it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import trio

from nursemaid import CheckoutTimeout, RemoteProtocolError, RequestTimeout, StartError, open_pool
from nursemaid.testing import FaultPlan
from nursemaid.workers._pool import Keep, Lease

WORKER = FaultPlan().argv()  # answers echo, sleep and garbage as asked
OPTIONS: dict[str, Any] = {"size": 1, "health_interval": None, "shutdown": 0.2}


async def _cut_own_frame(lease: Lease) -> None:
    """Make the worker busy (not reading), then cut a frame bigger than the pipe."""
    with pytest.raises(RequestTimeout):
        await lease.port.request("sleep", 3, timeout=0.05)
    with pytest.raises(RequestTimeout):
        await lease.port.request("echo", "x" * 500_000, timeout=0.2)
    assert lease.port._closed_how == "cut"


async def _garbage(lease: Lease) -> None:
    with pytest.raises(RemoteProtocolError):
        await lease.port.request("garbage")


@pytest.mark.slow  # real workers, one of them cut mid-frame
@pytest.mark.parametrize("closes_it", [_cut_own_frame, _garbage], ids=["cut", "garbage"])
async def test_a_port_handle_checkin_closed_is_not_handed_on(
    closes_it: Any,
) -> None:
    async def hook(lease: Lease, exc: BaseException | None) -> Keep:
        await closes_it(lease)
        return Keep()

    with trio.fail_after(20):
        async with open_pool(WORKER, handle_checkin=hook, **OPTIONS) as pool:
            async with pool.checkout():
                pass
            assert pool.statistics().restarts == 1
            assert await pool.execute("echo", 1) == 1  # a new worker, through its own hook


@pytest.mark.slow  # real workers, one of them cut mid-frame
async def test_a_port_handle_checkout_closed_is_refused_though_it_said_keep() -> None:
    first = True

    async def hook(lease: Lease) -> Keep:
        nonlocal first
        if first:
            first = False
            await _cut_own_frame(lease)
        return Keep()

    with trio.fail_after(20):
        async with open_pool(WORKER, handle_checkout=hook, **OPTIONS) as pool:
            async with pool.checkout() as lease:
                assert await lease.request("echo", 1) == 1


@pytest.mark.slow  # real workers, one of them cut mid-frame by the deadline
async def test_a_checkout_deadline_that_cuts_the_hooks_frame_says_the_worker_goes() -> None:
    async def hook(lease: Lease) -> Keep:
        with pytest.raises(RequestTimeout):
            await lease.port.request("sleep", 3, timeout=0.05)
        await lease.port.request("echo", "x" * 500_000)  # cut by the checkout's deadline
        return Keep()

    with trio.fail_after(20):
        async with open_pool(WORKER, handle_checkout=hook, **OPTIONS) as pool:
            with pytest.raises(CheckoutTimeout, match="it is removed and replaced"):
                async with pool.checkout(timeout=0.3):
                    pass
            assert pool.statistics().restarts == 1


@pytest.mark.slow  # real workers, and the pool giving up
async def test_garbage_met_by_handle_checkin_counts_against_the_intensity() -> None:
    async def hook(lease: Lease, exc: BaseException | None) -> Keep:
        with contextlib.suppress(RemoteProtocolError):
            await lease.request("garbage")
        return Keep()

    async def until_it_gives_up() -> None:
        async with open_pool(WORKER, handle_checkin=hook, intensity=1, **OPTIONS) as pool:
            for _ in range(3):
                async with pool.checkout():
                    pass
            await trio.sleep_forever()  # the give-up cancels this

    with trio.fail_after(30), pytest.raises(StartError, match="gave up"):
        await until_it_gives_up()
