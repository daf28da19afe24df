"""Scoreboard reports (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from cdsl.sim.scoreboard import Scoreboard, ScoreboardError


def test_all_equal():
    sb = Scoreboard(name="net", seed=5)
    for s in range(3):
        assert sb.compare([1, 2, 3], (1, 2, 3), sample=s, port="fc1")
    assert sb.passed and sb.summary() == "3/3 samples bit-exact"
    sb.raise_if_failed()


def test_first_mismatch_names_sample_port_element_values_and_seed():
    sb = Scoreboard(name="net", seed=1234)
    sb.compare([1, 2, 3], [1, 2, 3], sample=0, port="fc2")
    assert not sb.compare([1, 2, 3], [1, 7, 9], sample=1, port="fc2")
    assert not sb.compare([0], [5], sample=2, port="fc2")
    m = sb.first_mismatch
    assert (m.sample, m.port, m.element, m.expected, m.actual, m.seed) == (1, "fc2", 1, 2, 7, 1234)
    assert m.mismatching_elements == 2
    with pytest.raises(ScoreboardError) as err:
        sb.raise_if_failed()
    text = str(err.value)
    assert text.startswith("1/3 samples bit-exact")
    assert "sample 1" in text and "'fc2'" in text and "element [1]" in text
    assert "expected 2, got 7" in text and "seed 1234" in text


def test_arrays_report_the_index_tuple():
    exp = np.arange(12).reshape(3, 4)
    act = exp.copy()
    act[2, 1] = -1
    sb = Scoreboard(seed=0)
    assert not sb.compare(exp, act, sample=7, port="conv1")
    m = sb.first_mismatch
    assert m.element == 9 and m.index == (2, 1) and m.expected == 9 and m.actual == -1


def test_length_difference_is_a_mismatch():
    sb = Scoreboard(seed=3)
    assert not sb.compare([1, 2], [1], sample=0)
    assert sb.first_mismatch.element == 1 and sb.first_mismatch.actual == "<missing>"
    with pytest.raises(ScoreboardError, match="sample 4"):
        sb.check([1], [2], sample=4)
