"""Hypothesis profiles for the fuzz tests: `default` for the suite (120 inputs per target, the same ones
every run, well under a minute in all), `fuzz` for the figures (3,000 per target, new ones every run):
`HYPOTHESIS_PROFILE=fuzz pytest tests/fuzz` (or `python -m bench.fuzz`). `FUZZ_EXAMPLES=N` overrides the count."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                      HealthCheck.filter_too_much])
settings.register_profile("default", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")), derandomize=True,
                          **_COMMON)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "3000")), **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
