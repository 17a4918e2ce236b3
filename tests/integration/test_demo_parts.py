"""The demo's small parts: its options, its fault claims, and its careful SIGKILL."""

from __future__ import annotations

import random
import re
import signal
import subprocess
from pathlib import Path

import pytest

from nursemaid import PoolStatistics, WorkerInfo, WorkerState
from nursemaid._cli._demo import Chaos, DemoConfig, PoolHolder, kill_child
from nursemaid._cli.demo_worker import claim


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"duration": 0}, "duration must be a positive number of seconds (got 0)"),
        ({"duration": float("inf")}, "duration must be a positive number"),
        ({"requests": 0}, "requests must be at least 1 (got 0)"),
        ({"size": 0}, "size must be at least 1 (got 0)"),
        ({"clients": 0}, "clients must be at least 1 (got 0)"),
        ({"fault_rate": 1.5}, "fault rate is a probability per request, between 0 and 1"),
        ({"faults": ("kill", "flood")}, "unknown fault kinds ['flood']"),
    ],
)
def test_bad_demo_config_is_a_value_error_naming_the_option(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        DemoConfig(**options)  # type: ignore[arg-type]


def test_an_armed_fault_is_claimed_by_exactly_one_worker(tmp_path: Path) -> None:
    (tmp_path / "hang").touch()
    assert claim(str(tmp_path), "hang") is True
    assert claim(str(tmp_path), "hang") is False
    assert [p.name.split(".")[:2] for p in tmp_path.iterdir()] == [["hang", "taken"]]


def test_nothing_armed_means_nothing_claimed(tmp_path: Path) -> None:
    assert claim(str(tmp_path), "garbage") is False


def test_kill_child_kills_a_live_child() -> None:
    with subprocess.Popen(["sleep", "30"]) as child:
        assert kill_child(child.pid) is True
        assert child.wait(timeout=10) == -signal.SIGKILL


def test_kill_child_refuses_a_process_that_is_not_our_child() -> None:
    # sh is our child; the sleep it starts is not (it is our grandchild).
    with subprocess.Popen(
        ["sh", "-c", "sleep 30 & echo $!; wait"], stdout=subprocess.PIPE, text=True
    ) as shell:
        assert shell.stdout is not None
        grandchild = int(shell.stdout.readline())
        try:
            assert kill_child(grandchild) is False
            assert Path(f"/proc/{grandchild}").exists()
        finally:
            assert kill_child(grandchild) is False
            subprocess.run(["kill", str(grandchild)], check=True)
            shell.wait(timeout=10)


def test_kill_child_refuses_a_reaped_child() -> None:
    with subprocess.Popen(["true"]) as child:
        child.wait(timeout=10)
    assert kill_child(child.pid) is False


def statistics_of(*workers: WorkerInfo) -> PoolStatistics:
    """A pool's statistics listing *workers*, as ``Chaos.inject`` reads them."""
    return PoolStatistics(
        size=len(workers),
        idle=0,
        leased=len(workers),
        checking=0,
        starting=0,
        stopping=0,
        waiting=0,
        restarts=0,
        workers=workers,
        checkouts=len(workers),
        waits=0,
        wait_time_total=0.0,
        wait_time_max=0.0,
        lease_time_total=0.0,
        lease_time_max=0.0,
    )


def test_a_kill_fault_kills_a_leased_worker(tmp_path: Path) -> None:
    chaos = Chaos(str(tmp_path), ("kill",))
    with subprocess.Popen(["sleep", "30"]) as child:
        chaos.inject(
            random.Random(0), 0.0, statistics_of(WorkerInfo(0, WorkerState.LEASED, 1, child.pid))
        )
        assert child.wait(timeout=10) == -signal.SIGKILL
    assert chaos.kills == 1


def test_a_kill_fault_spares_a_worker_hanging_on_an_injected_hang(tmp_path: Path) -> None:
    # A SIGKILL would turn the hang into a kill: its client would get WorkerCrashed
    # instead of RequestTimeout, and the pool's way of stopping a worker that no
    # longer reads its stdin would go untested (in a soak it pre-empted almost every hang).
    chaos = Chaos(str(tmp_path), ("kill",))
    with subprocess.Popen(["sleep", "30"]) as hung:
        (tmp_path / f"hang.taken.{hung.pid}").touch()  # what a claimed hang leaves
        chaos.inject(
            random.Random(0), 0.0, statistics_of(WorkerInfo(0, WorkerState.LEASED, 1, hung.pid))
        )
        hung.terminate()  # it is still alive to take our SIGTERM, not dead of a SIGKILL
        assert hung.wait(timeout=10) == -signal.SIGTERM
    assert (chaos.kills, chaos.killed) == (0, set())


class _StatsOnly:
    def __init__(self, restarts: int) -> None:
        self.restarts = restarts

    def statistics(self) -> _StatsOnly:
        return self


def test_restarts_of_every_pool_the_supervisor_replaced_are_summed() -> None:
    holder = PoolHolder()
    # Each pool is freed as soon as it is sampled, so CPython is free to give the
    # next one its id: counting by id(pool) kept only the last pool's restarts.
    holder.sample(_StatsOnly(3))
    holder.sample(_StatsOnly(2))
    holder.sample(_StatsOnly(4))
    assert holder.restarts == 9
