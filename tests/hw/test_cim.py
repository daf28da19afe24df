"""CIM hardware in amaranth.sim: the tile against plain math (every cell x dac in {1, 2, 4}^2, signed
and unsigned inputs, ADC saturation at both ends), the engine against the golden step with cycles
against the node's model (row and column tiling, partial tiles, kernel duplication, dense and conv,
signed inputs, back-pressure), and the mapping's figures."""

import itertools

import numpy as np
import pytest

from tb.cim_cases import S8, cim_layer, cim_node, golden_outputs, layer_inputs, tile_case, tile_component, tile_expected
from tb.pysim import run_graph

from cdsl.hw.cim_tile import reciprocal
from cdsl.hw.cores.cim import CimEngineNode


def tile_words(case, dut, sample):
    layout = dut.i.payload.shape()
    n = len(sample)
    return [layout.const({"x": list(levels), "first": b == 0, "last": b == n - 1}) for b, levels in enumerate(sample)]


@pytest.mark.parametrize("cell,dac", list(itertools.product([1, 2, 4], [1, 2, 4])))
@pytest.mark.parametrize("x_signed", [False, True])
def test_tile_every_cell_and_dac(cell, dac, x_signed):
    seed = cell * 100 + dac * 10 + x_signed
    rng = np.random.default_rng(seed)
    in_steps = -(-8 // dac)
    case = tile_case(rng, rows=9, cols=6, cell=cell, dac=dac, adc=4, x_signed=x_signed, in_steps=in_steps)
    dut = tile_component(case)
    words, want, low, high = [], [], 0, 0
    for sample in case.samples:
        words += tile_words(case, dut, sample)
        sums, lo, hi = tile_expected(case, sample)
        want.append(sums)
        low, high = low + lo, high + hi
    assert low > 0 and high > 0, "the case must saturate the ADC at both ends"
    got, cycles = run_graph(dut, {"i": words}, {"o": len(case.samples)}, seed=seed, in_stall=0.2, out_stall=0.3)
    assert [[int(v) for v in word] for word in got["o"]] == want, f"seed={seed}"
    got, cycles = run_graph(dut, {"i": words}, {"o": len(case.samples)})
    assert cycles == len(words) + 1  # one step per cycle, the last sums one cycle later


def test_reciprocal_divides_exactly():
    for divisor, levels in itertools.product([1, 2, 3, 7, 30, 254, 1001], [2, 16, 64]):
        bound = divisor * levels
        mult, shift = reciprocal(divisor, bound)
        a = np.arange(bound, dtype=object)
        assert np.array_equal((a * mult) >> shift, a // divisor), (divisor, levels)


def check_engine(layer, node, xs, *, seed, backpressure=True):
    assert isinstance(node, CimEngineNode)
    for x in xs:
        want = golden_outputs(layer, x)
        words = x.reshape(-1).tolist()
        got, cycles = run_graph(node.component(), {"i": words}, {"o": len(want)})
        assert got["o"] == want, f"seed={seed}"
        assert cycles == len(words) + node.delay({}), f"seed={seed}"
    if backpressure:
        got, _ = run_graph(node.component(), {"i": words}, {"o": len(want)}, seed=seed, in_stall=0.3, out_stall=0.4)
        assert got["o"] == want, f"seed={seed} (backpressure)"


@pytest.mark.parametrize("duplicate", [None, 1])
def test_conv_engine_row_tiles_and_duplication(duplicate):
    """3 input channels of 3x3 windows on 16-row tiles: one channel per row tile with two kernel copies
    (3 x 4 windows), 3 row tiles; the plain mapping keeps the same row tiles."""
    seed = 21
    rng = np.random.default_rng(seed)
    layer = cim_layer(rng, in_shape=(3, 5, 5), co=4, kernel=3, padding=1, rows=16, cols=16)
    node = cim_node(layer, duplicate=duplicate)
    assert node.row_tiles == 3 and node.col_tiles == 1
    assert node.duplicate == (2 if duplicate is None else 1)
    check_engine(layer, node, layer_inputs(rng, layer), seed=seed)


def test_dense_engine_row_and_column_tiles_partial():
    """K=23 on 8-row tiles (3 row tiles, the last with 7 rows), 7 outputs of 2 slices on 6 columns
    (3 per column tile: 3 column tiles, the last with one output)."""
    seed = 22
    rng = np.random.default_rng(seed)
    layer = cim_layer(rng, in_shape=(23, 1, 1), co=7, rows=8, cols=6, dense=True)
    node = cim_node(layer, lanes=4)
    assert (node.row_tiles, node.col_tiles, node.tile_rows(2)) == (3, 3, 7)
    assert len(node.tile_outputs(2)) == 1
    check_engine(layer, node, layer_inputs(rng, layer), seed=seed)


@pytest.mark.parametrize("cell,dac", [(1, 1), (2, 4), (4, 2)])
def test_conv_engine_signed_inputs(cell, dac):
    """Signed 8-bit inputs (a signed top DAC step), stride 2, per-channel requantization."""
    seed = 30 + cell * 3 + dac
    rng = np.random.default_rng(seed)
    layer = cim_layer(rng, in_shape=(2, 6, 6), co=3, kernel=3, stride=2, padding=1, rows=20, cols=12, cell=cell,
                      dac=dac, w_bits=4, in_type=S8, per_channel=True)
    node = cim_node(layer)
    assert node.duplicate == (2 if cell > 1 else 1)  # two copies of the 3 x 3 kernel, two strides apart
    check_engine(layer, node, layer_inputs(rng, layer), seed=seed, backpressure=cell == 2)


def test_conv_engine_window_wider_than_a_tile_and_compute_bound():
    """A 3x3 window on 8-row tiles: row tiles cut through channels (no duplication); one lane per
    input channel gathers faster than the 8 input steps, so the tiles set the pace."""
    seed = 23
    rng = np.random.default_rng(seed)
    layer = cim_layer(rng, in_shape=(2, 4, 4), co=2, kernel=3, padding=1, rows=8, cols=8)
    node = cim_node(layer, lanes=2)
    assert not node.aligned and node.duplicate == 1 and node.row_tiles == 3
    assert node.gather_steps == 9 > node.in_steps
    check_engine(layer, node, layer_inputs(rng, layer, count=1), seed=seed, backpressure=False)
    dense = cim_layer(rng, in_shape=(6, 1, 1), co=3, rows=8, cols=8, dense=True)
    fast = cim_node(dense, lanes=6)
    assert fast.gather_steps == 1 < fast.in_steps
    check_engine(dense, fast, layer_inputs(rng, dense), seed=seed)


def test_duplication_figures():
    """Two kernel copies: the same tiles and conversions, half the activations, more cells used."""
    rng = np.random.default_rng(24)
    layer = cim_layer(rng, in_shape=(8, 4, 4), co=16, kernel=3, padding=1, rows=64, cols=64)
    plain, dup = cim_node(layer, duplicate=1), cim_node(layer)
    assert dup.duplicate == 2 and dup.tiles == plain.tiles == 2
    assert dup.activations * 2 == plain.activations
    f1, f2 = plain.figures({}), dup.figures({})
    assert f2["utilization"] == 2 * f1["utilization"]
    assert f1["utilization"] == 8 * 9 * 16 * 2 / (2 * 64 * 64)
    assert f1["adc_conversions"] == f2["adc_conversions"] == 16 * 8 * (16 * 2 * 2)
    assert dup.delay({}) < plain.delay({})
