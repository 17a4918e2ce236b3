"""The protocol layer stays sans-IO and cheap to import.

``nursemaid.protocol`` never imports trio (it is the bottom layer, and sans-IO).
``_framing`` and ``_wire`` go further: the far side of a port (``serve``) imports
them, so they import nothing outside the standard library but
``nursemaid._errors``. Each check runs in a fresh interpreter, because this test
process has long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROTOCOL_MODULES = [
    "nursemaid.protocol",
    "nursemaid.protocol._framing",
    "nursemaid.protocol._wire",
    "nursemaid.protocol._codec",
    "nursemaid.protocol._envelope",
]

# What a stdlib-only module may bring in beyond the standard library.
ALLOWED_NURSEMAID = {"nursemaid", "nursemaid._errors", "nursemaid._lazy"}


def modules_after_import(module: str) -> dict[str, object]:
    code = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"import {module}\n"
        "new = sorted(set(sys.modules) - before)\n"
        "print(json.dumps({'new': new, 'stdlib': sorted(sys.stdlib_module_names)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize("module", PROTOCOL_MODULES)
def test_importing_protocol_module_does_not_import_trio(module: str) -> None:
    new = modules_after_import(module)["new"]
    assert isinstance(new, list)
    assert [m for m in new if m == "trio" or m.startswith("trio.")] == []


def test_using_every_public_protocol_name_does_not_import_trio() -> None:
    code = (
        "import sys, nursemaid.protocol as p\n"
        "for name in p.__all__: getattr(p, name)\n"
        "print('trio' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("module", ["nursemaid.protocol._framing", "nursemaid.protocol._wire"])
def test_far_side_modules_import_only_the_standard_library(module: str) -> None:
    report = modules_after_import(module)
    new, stdlib = report["new"], report["stdlib"]
    assert isinstance(new, list)
    assert isinstance(stdlib, list)
    outside = [
        m
        for m in new
        if m.split(".")[0] not in stdlib
        and m not in ALLOWED_NURSEMAID
        and m not in {"nursemaid.protocol", module}
    ]
    assert outside == []
