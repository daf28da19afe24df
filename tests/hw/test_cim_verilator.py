"""CIM in Verilator: one CimEngine through the bulk-load harness against the golden step (signed
inputs, three row tiles with a partial last one, two kernel copies with an output past the edge,
back-pressure), and a generated network with two CIM layers (a conv with kernel copies, a dense
layer on row and column tiles) against the golden model, cycles against the plan."""

import numpy as np
import pytest

from tb.cim_cases import S8, cim_layer, cim_net, cim_node, golden_outputs, layer_inputs
from tb.harness_case import run_case, verify_design

pytestmark = pytest.mark.slow


def test_cim_engine_block(tmp_path):
    seed = 60
    rng = np.random.default_rng(seed)
    layer = cim_layer(rng, in_shape=(5, 5, 5), co=4, kernel=3, padding=1, rows=24, cols=16, cell=2, dac=2, adc=4,
                      in_type=S8, per_channel=True)
    node = cim_node(layer, lanes=2)
    assert (node.row_tiles, node.duplicate, node.tile_rows(2)) == (3, 2, 12)
    xs = layer_inputs(rng, layer, count=3)
    samples = [x.reshape(-1).tolist() for x in xs]
    expected = [golden_outputs(layer, x) for x in xs]
    run_case(tmp_path, "cim_engine", node.component(), samples, expected,
             [node.in_types[0].words + node.delay({})] * len(xs), throttle_seed=seed, throttle=True)


def test_cim_network(tmp_path):
    seed = 61
    rng = np.random.default_rng(seed)
    im = cim_net(seed=seed)
    design = verify_design(tmp_path, "cim_net", im, layer_inputs(rng, im.layers[0], count=4), [{}], default_lanes=2)
    assert design.plan.node("c1").duplicate == 2 and design.plan.node("fc").col_tiles == 2
