"""Worker programs start without importing typing, trio, attrs or cattrs.

A worker's start-up time is what a pool pays for every restart, and ``import
trio`` costs ~120 ms, attrs and cattrs ~40 ms, ``typing`` ~4 ms, against ~15 ms for
a bare interpreter. Each test runs a real worker program in a fresh interpreter,
answers one ping through it, lets it serve until its stdin ends, and then lists
every module in ``sys.modules``: what it imported to start and to serve.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = ("typing", "trio", "attr", "attrs", "cattr", "cattrs", "hypothesis")

SERVE = "from nursemaid import serve\nserve({'echo': lambda args: args})\n"
WORKERS = {  # how each is started: ("code", source) or ("module", name)
    "serve": ("code", SERVE),
    "fault worker": ("module", "nursemaid.testing.fault_worker"),
    "demo worker": ("module", "nursemaid._cli.demo_worker"),
}

# Runs the worker as `python -c` or `python -m` would, then writes sys.modules out
# (to a file: serve points descriptor 1 at stderr).
WRAPPER = """\
import sys
kind, what, out = sys.argv[1:4]
try:
    if kind == "code":
        exec(compile(what, "<worker>", "exec"), {"__name__": "__main__"})
    else:
        import runpy
        sys.argv = [what]
        runpy.run_module(what, run_name="__main__", alter_sys=True)
finally:
    with open(out, "w") as file:
        file.write("\\n".join(sorted(sys.modules)))
"""


def modules_after_serving(kind: str, what: str, out: Path) -> set[str]:
    ping = b'{"id":1,"op":"ping"}'
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, kind, what, str(out)],
        input=len(ping).to_bytes(4, "big") + ping,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.endswith(b'{"id":1,"result":"pong"}')  # it really served
    return set(out.read_text().split())


@pytest.mark.parametrize("worker", sorted(WORKERS))
def test_worker_program_imports_no_typing_trio_attrs_or_cattrs(worker: str, tmp_path: Path) -> None:
    modules = modules_after_serving(*WORKERS[worker], tmp_path / "modules.txt")
    assert "nursemaid.workers._serve" in modules
    assert sorted(m for m in modules if m.split(".")[0] in FORBIDDEN) == []
