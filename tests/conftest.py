"""Shared test configuration: hypothesis profiles.

``ci`` (the default) keeps the property tests quick enough for every run; ``soak``
(``nox -s soak``) runs orders of magnitude more examples. Select one with
``pytest --hypothesis-profile=NAME``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "soak",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("ci")
