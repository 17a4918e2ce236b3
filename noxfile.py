"""Task runner: ``nox -l`` lists the sessions.

tests      the whole test suite (unit, property, integration)
lint       ruff check and ruff format --check
typecheck  mypy --strict on src/
docs       Sphinx, warnings as errors
bench      benchmarks side by side with their peers (see bench/run.py)
soak       the property tests with many more examples, and the chaos soak
"""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (pass pytest arguments after ``--``)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy --strict."""
    session.install("-e", ".[typecheck]")
    session.run("mypy", "--strict", "src/nursemaid")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs with Sphinx; any warning fails the build."""
    if shutil.which("dot") is None:
        session.error(
            "the docs need Graphviz's 'dot' on PATH to render their diagrams; "
            "install Graphviz (e.g. 'apt-get install graphviz' or 'brew install graphviz')"
        )
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks beside their peers in one run (see bench/run.py)."""
    session.install("-e", ".[bench]")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """Property tests with the soak profile (many more examples), then the chaos soak."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests/property", "--hypothesis-profile=soak", *session.posargs)
    # The chaos soak: the demo's scenario at 100,000 requests (see bench/soak.py).
    session.run("python", "bench/soak.py", "--requests", "100000")
