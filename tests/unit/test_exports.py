"""Every public name is exported once, resolves, and shows its public module.

The lazy ``__init__`` modules list their exports twice (a table for run time, and
``from ... import X as X`` lines under ``TYPE_CHECKING`` for type checkers); these
tests keep the two in agreement, as Trio's ``test_exports.py`` does for its API.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import nursemaid

LAZY_PACKAGES = ["nursemaid", "nursemaid.protocol", "nursemaid.workers", "nursemaid.testing"]


def _type_checking_names(module_name: str) -> set[str]:
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(inspect.getfile(module)).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    for alias in stmt.names:
                        assert alias.asname == alias.name, f"{module_name}: use 'X as X'"
                        names.add(alias.name)
    return names


@pytest.mark.parametrize("module_name", LAZY_PACKAGES)
def test_type_checking_imports_match_lazy_table(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == _type_checking_names(module_name)


@pytest.mark.parametrize("module_name", LAZY_PACKAGES)
def test_every_public_name_resolves(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert getattr(module, name) is not None


def test_public_classes_show_the_public_module() -> None:
    for name in nursemaid.__all__:
        obj = getattr(nursemaid, name)
        if isinstance(obj, type) and name in vars(nursemaid._errors):
            assert obj.__module__ == "nursemaid", name


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = nursemaid.nope  # type: ignore[attr-defined]


def test_importing_nursemaid_imports_no_trio_attrs_or_cattrs() -> None:
    # Worker programs import nursemaid; start-up time matters (see _lazy.py).
    code = (
        "import sys, nursemaid, nursemaid.protocol, nursemaid.workers;"
        "bad = [m for m in ('trio', 'attrs', 'cattrs') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_open_pool_spells_out_the_options_the_contract_names_with_their_defaults() -> None:
    import inspect

    from nursemaid import open_pool

    params = inspect.signature(open_pool).parameters
    assert {
        name: params[name].default for name in ("lazy", "init_timeout", "checkout_timeout")
    } == {
        "lazy": False,
        "init_timeout": 5.0,
        "checkout_timeout": 5.0,
    }
    assert params["size"].kind is inspect.Parameter.KEYWORD_ONLY


def test_the_workers_public_names_show_the_module_users_import_them_from() -> None:
    import pickle

    import nursemaid.workers

    private = {
        name: module
        for name in nursemaid.workers.__all__
        if (module := getattr(getattr(nursemaid.workers, name), "__module__", None))
        not in (None, "nursemaid.workers")
    }
    assert private == {}
    state = nursemaid.workers.WorkerState.IDLE
    assert pickle.loads(pickle.dumps(state)) is state  # the public path resolves


def test_public_classes_type_hints_resolve_under_their_public_module() -> None:
    # __module__ names the public package, where get_type_hints (attrs, cattrs,
    # Sphinx) looks names up; the annotations are resolved where they were written.
    import typing

    import nursemaid.protocol
    import nursemaid.supervisor
    import nursemaid.testing
    import nursemaid.workers

    unresolved = set()
    for package in (nursemaid, nursemaid.supervisor, nursemaid.workers, nursemaid.testing):
        for name in package.__all__:
            obj = getattr(package, name)
            if isinstance(obj, type):
                try:
                    typing.get_type_hints(obj)
                except NameError:
                    unresolved.add(f"{package.__name__}.{name}")
    assert unresolved == set()


def test_a_pool_statistics_snapshot_unstructures_with_cattrs_for_an_exporter() -> None:
    import cattrs

    from nursemaid.workers import PoolStatistics, WorkerInfo, WorkerState

    stats = PoolStatistics(
        size=1, idle=1, leased=0, checking=0, starting=0, stopping=0, waiting=0,
        restarts=0, workers=(WorkerInfo(0, WorkerState.IDLE, 3, 1234),), checkouts=3,
        waits=0, wait_time_total=0.0, wait_time_max=0.0, lease_time_total=0.5,
        lease_time_max=0.25,
    )  # fmt: skip
    data = cattrs.Converter().unstructure(stats)
    assert data["workers"] == [{"id": 0, "state": "idle", "uses": 3, "pid": 1234}]
