"""The AQFP energy model: gate counts of a small layer written out by hand, how the figures scale, and the
parameter overrides."""

import pytest

from cdsl.contract.ref.aqfp_energy import EnergyParams, aqfp_layers, layer_energy, model_energy
from tb.random_models import random_bnn


def test_a_small_layer_by_hand():
    # K = 4 inputs, O = 2 outputs, G = 2 groups, T = 3: the counter holds up to 6 -> W = 3 bits;
    # full adders per output: popcount G - 1 = 1, accumulator W = 3 -> 4
    e = layer_energy("b", fan_in=4, outputs=2, pixels=1, groups=2, T=3)
    assert e.buffers == 2 * (4 + 2 + 3 * 4)  # cells, group buffers, accumulator register buffers
    assert e.splitters == 4 * 1 + 2 * 4 * 4  # input fan-out to 2 columns, 4 splitters per full adder
    assert e.majorities == 2 * (4 * 3 + 3)  # 3 per full adder, the W-bit comparator
    assert e.junctions == 2.0 * (36 * 2 + 36 * 2 + 30 * 6)
    assert e.cycles == 3 and e.switching_events == e.junctions * 3
    assert e.aqfp == pytest.approx(e.switching_events * 1.9e-22)
    assert e.aqfp_cooled == pytest.approx(400 * e.aqfp)
    assert e.macs == 8 and e.cmos == pytest.approx(8 * 5e-15 + (8 + 4 + 2 * 16) * 10e-12 / 64)


def test_scaling():
    one = layer_energy("b", fan_in=64, outputs=16, pixels=1, groups=4, T=8)
    four = layer_energy("b", fan_in=64, outputs=16, pixels=4, groups=4, T=8)
    assert four.aqfp == pytest.approx(4 * one.aqfp) and four.macs == 4 * one.macs
    longer = layer_energy("b", fan_in=64, outputs=16, pixels=1, groups=4, T=16)
    assert longer.aqfp > 2 * one.aqfp  # twice the cycles, and one more counter bit
    assert longer.cmos == one.cmos  # the CMOS layer does not run a bitstream


def test_overrides():
    p = EnergyParams().with_overrides("cooling=1000, e_jj=1e-21,jj_majority=8")
    assert (p.cooling, p.e_jj, p.jj_majority) == (1000.0, 1e-21, 8) and isinstance(p.jj_majority, int)
    assert EnergyParams().with_overrides(None) == EnergyParams()
    for bad, message in (("colling=3", "one of"), ("cooling", "NAME=VALUE"), ("jj_buffer=2.5", "not a int"),
                         ("cooling=-1", "negative"), ("e_jj=1e400", "finite"), ("cooling=nan", "finite"),
                         ("path_balance=inf", "finite"), ("e_jj=0", "above 0"), ("cooling=0", "above 0"),
                         ("path_balance=0.0", "above 0")):
        with pytest.raises(ValueError, match=message):
            EnergyParams().with_overrides(bad)
    with pytest.raises(ValueError, match="T must be a positive int"):
        layer_energy("b", fan_in=4, outputs=2, pixels=1, groups=2, T=0)


def test_model_energy_finds_the_aqfp_layers():
    im = random_bnn(seed=3, conv=True, group=2, T=5)
    assert [lay.name for lay in aqfp_layers(im)] == ["b"]
    (e,) = model_energy(im)
    assert e.cycles == 6 * 6 * 5 and e.macs == 12 * 4 * 36  # 6x6 output pixels, K = 3 * 2 * 2, O = 4
    (e64,) = model_energy(im, T=64)
    assert e64.cycles == 36 * 64
    assert model_energy(random_bnn(seed=3, group=None)) == []
