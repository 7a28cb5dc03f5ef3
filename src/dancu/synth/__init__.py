"""Synthetic data shaped like Vietnam's, for demos, tests and benchmarks: a national population
and agency extracts drawn from it with real extracts' defects and their ground truth.

A leaf: it imports dancu.core only. The contexts write what it generates, in their own terms:
``registry/synth_population.py`` the population file (``dancu synth population``),
``reconcile/synth_extract.py`` the extract with reconciliation's vocabulary (``dancu synth
extract``).

- ``names.py``: the name lists with their frequencies, regional spellings, ethnicity and
  religion by province;
- ``people.py``: the population, household by household, in numpy chunks;
- ``cast.py``: who is on which row of an extract (DuckDB over the population file);
- ``extract.py``: the rows rendered with their defects, the expected verdicts, the writers;
- ``defects.py``: each defect as a pure function.
"""
