"""The examples in the protocol layer's docstrings run and show what they claim.

They are the first thing a reader of the reference sees, so they are executed
here rather than trusted.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "nursemaid.protocol._framing",
    "nursemaid.protocol._codec",
    "nursemaid.protocol._envelope",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    # The public classes say they live in nursemaid.protocol, which makes doctest's
    # own module scan skip them: find each exported object's examples directly.
    finder = doctest.DocTestFinder()
    tests = [
        test
        for export in module.__all__
        for test in finder.find(getattr(module, export), export, globs=vars(module))
        if test.examples
    ]
    assert tests, f"{name} has no examples to run"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0
