"""Test-only hardware and testbenches: the one home of what only tests use.

Importable as `tb.*` (pytest puts tests/ on sys.path: `pythonpath` in pyproject.toml), also by the
cocotb simulator process, which receives pytest's sys.path as PYTHONPATH.

- `pysim`: run a component with stream ports in Amaranth's Python simulator.
- `random_models`: IntModels with random integer weights (nothing trained).
- `engine_cases`, `mac_cases`: block-test configurations and their stimuli.
- `bulk`: the cocotb module that checks a prepared case through the bulk-load harness.
"""
