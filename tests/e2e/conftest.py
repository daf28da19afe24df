"""Run folders of the bundled examples, each trained, generated and verified once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdsl.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# test samples `cdsl run` verifies (default 150; None: the whole test split)
SAMPLES: dict[str, int | None] = {"cnn_mac": 100, "trunc": 100, "msq": 100, "cnn": None, "bnn": None, "vit": None, "vit_progressive": 100}


@pytest.fixture(scope="session")
def example_run(tmp_path_factory):
    """example_run(name) -> the run folder of `cdsl run examples/<name>.cdsl -o ... [--n N]` (made once)."""
    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            run = tmp_path_factory.mktemp(name) / "run"
            n = SAMPLES.get(name, 150)
            assert main(["run", str(EXAMPLES / f"{name}.cdsl"), "-o", str(run)] + ([] if n is None else ["--n", str(n)])) == 0
            runs[name] = run
        return runs[name]

    return get
