"""Shared test settings: the hypothesis profiles, and the fuzz counts printed at the end.

``SNNFAST_HYPOTHESIS_PROFILE=ci`` (set by ``.ci/run``) selects the larger counts; the fuzz
suites (``tests/test_fuzz_*.py``) read it too and then run their full goals (5,000 engine calls,
500 tampered files of every kind). Their counts are printed in the terminal summary and, when
``$SNNFAST_FUZZ_REPORT`` names a file, written there as JSON.
"""

import json
import os

from hypothesis import HealthCheck, settings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=_SLOW_OK
)
# CI draws the same examples every run (a failure there is reproducible, not a lucky draw); the
# default profile explores new ones each time, which is how the fuzz suites find new bugs.
settings.register_profile(
    "ci", max_examples=500, deadline=None, suppress_health_check=_SLOW_OK, derandomize=True
)
settings.load_profile(os.environ.get("SNNFAST_HYPOTHESIS_PROFILE", "default"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    """The fuzz suites' counts (what a closing note quotes)."""
    try:
        from helpers_fuzz import COUNTS
    except ImportError:
        return
    if not COUNTS:
        return
    terminalreporter.section("fuzz counts")
    for suite, counts in sorted(COUNTS.items()):
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
        terminalreporter.write_line(f"{suite}: {parts}")
    path = os.environ.get("SNNFAST_FUZZ_REPORT")
    if path:
        with open(path, "w") as fh:
            json.dump({s: dict(c) for s, c in COUNTS.items()}, fh, indent=1, sort_keys=True)
