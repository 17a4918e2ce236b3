"""nursemaid.testing imports lazily and shows its public module.

That its lazy table and TYPE_CHECKING lines agree, and that every name resolves, is
checked with the other lazy packages in ``test_exports.py``.

``python -m nursemaid.testing.fault_worker`` executes ``nursemaid/testing/__init__.py``
first, so that file must import nothing heavy (trio, attrs, cattrs, hypothesis).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import nursemaid.testing


def test_importing_nursemaid_testing_imports_nothing_heavy() -> None:
    code = (
        "import sys, nursemaid.testing;"
        "bad = [m for m in ('trio', 'attrs', 'cattrs', 'hypothesis') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("name", nursemaid.testing.__all__)
def test_public_classes_and_functions_show_the_public_module(name: str) -> None:
    obj = getattr(nursemaid.testing, name)
    if isinstance(obj, type) or callable(obj):
        assert obj.__module__ == "nursemaid.testing"
