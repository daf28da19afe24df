"""Energy per inference of the AQFP binary layers of an integer model, next to a CMOS estimate of the same
layers: our model, built from stated gate counts and parameters a user can override (`EnergyParams`).

It reads only the integer model (fan-in K, output channels O, output pixels P, crossbar groups G, T),
so it sits beside the AQFP reference, where both `cdsl eval` and the hardware manifest can use it.

AQFP (one binary layer as a spatial crossbar that evaluates one output pixel, all O channels, per
bitstream of T clock cycles; per output channel):
- crossbar cells: K buffers or inverters (the weight's polarity: the XNOR with a stored weight);
- randomized output buffers: G (one per crossbar group, the gray-zone bit of the model);
- stochastic-computing counter: a popcount of the G group bits every cycle, G - 1 full adders; an
  accumulator of W = bit_length(G * T) bits, W full adders and W * `register_buffers` buffers to
  hold it across the clock's excitation phases; a threshold comparator of W majority gates;
- a full adder is `fa_majority` majority gates and `fa_splitters` splitters;
and per layer K * (O - 1) splitters fanning each input out to the O columns. Junctions = gates times
JJ per gate, times `path_balance` for the buffers AQFP needs to align every path to its clock phase.
An AQFP gate is powered by the AC excitation and dissipates every cycle whatever its data, so the
switching events per inference are junctions x P * T cycles, each dissipating `e_jj`; with cooling,
times `cooling` (the wall-plug energy to remove heat at 4.2 K).

CMOS (the same layer as a digital XNOR-popcount BNN): K * O * P binary MACs at `cmos_mac` each, and
memory reads at `cmos_read_bit` per bit: every weight bit once per inference (K * O), the input
bits once per output pixel (K * P), and O thresholds of `threshold_bits`. The AQFP side reads no
memory: its weights are the cells' polarities, fixed when the crossbar is programmed; the CMOS-AQFP
interface and the layers that stay fixed point are not counted on either side.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from cdsl.contract.ref.aqfp_accumulator import AqfpCore


POSITIVE = ("path_balance", "e_jj", "cooling")  # factors of every junction's energy: an override must be > 0


@dataclass(frozen=True)
class EnergyParams:
    """Every number of the model, with its source or the assumption it is (README: AQFP energy model)."""

    jj_buffer: int = 2  # JJ per buffer or inverter (lsils/SCE-benchmarks README: AQFP cell costs)
    jj_splitter: int = 2  # JJ per splitter (same source)
    jj_majority: int = 6  # JJ per 3-input majority gate (same source)
    fa_majority: int = 3  # majority gates per full adder: carry = MAJ(a,b,c), sum = MAJ(MAJ(a,b,~c), ~carry, c) (ours)
    fa_splitters: int = 4  # splitters per full adder: a, b, c and carry are each read twice or more (ours)
    register_buffers: int = 4  # buffers holding one accumulator bit across the 4 excitation phases (ours)
    path_balance: float = 2.0  # junction multiplier for phase-alignment buffers (assumption: AQFP path
    #   balancing is known to cost about as many buffers as the logic, arXiv 2510.03956)
    e_jj: float = 1.9e-22  # J per junction per clock cycle at 5 GHz: E = Phi0 * Ic * tau_j / tau_x with
    #   Ic = 50 uA, tau_j = 0.09 ps (MITLL SFQ5ee), tau_x = 1 / (4 * 5 GHz) (Takeuchi et al., AQFP: a
    #   tutorial review, IEICE Trans. Electron. 2022; 5 GHz is SuperSIM's default clock)
    cooling: float = 400.0  # wall-plug W per W removed at 4.2 K (assumption: the figure AQFP papers use;
    #   the Carnot limit is 70, small cryocoolers reach 10**3 and more)
    cmos_mac: float = 5e-15  # J per binary MAC (XNOR + one popcount full adder): about 1/8 of an 8-bit
    #   add, 0.03 pJ at 45 nm (Horowitz, ISSCC 2014), plus the XNOR (assumption)
    cmos_read_bit: float = 10e-12 / 64  # J per bit read: a 64-bit read from an 8 KB SRAM, 10 pJ (Horowitz, ISSCC 2014)
    threshold_bits: int = 16  # bits of one per-channel threshold read by the CMOS layer (ours)

    def with_overrides(self, text: str | None) -> "EnergyParams":
        """These parameters with `name=value,name=value` applied (ValueError naming a wrong one)."""
        if not text:
            return self
        known = {f.name: f for f in dataclasses.fields(self)}
        changes = {}
        for item in text.split(","):
            name, sep, value = (part.strip() for part in item.partition("="))
            if name not in known or not sep:
                raise ValueError(f"energy parameter {item.strip()!r}: expected NAME=VALUE with NAME one of "
                                 f"{', '.join(known)}")
            kind = int if known[name].type in (int, "int") else float
            try:
                changes[name] = kind(value)
            except ValueError:
                raise ValueError(f"energy parameter {name!r}: {value!r} is not a {kind.__name__}") from None
            if not math.isfinite(changes[name]) or changes[name] < 0:
                raise ValueError(f"energy parameter {name!r} must be a finite number, not negative, got {value!r}")
            if name in POSITIVE and changes[name] == 0:
                raise ValueError(f"energy parameter {name!r} must be above 0 (it multiplies every junction's energy, "
                                 f"so 0 leaves nothing to compare with), got {value!r}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class LayerEnergy:
    """One AQFP layer's figures per inference (energies in J)."""

    name: str
    macs: int
    buffers: int
    splitters: int
    majorities: int
    junctions: float  # with path balancing
    cycles: int
    switching_events: float
    aqfp: float
    aqfp_cooled: float
    cmos: float


def layer_energy(name: str, *, fan_in: int, outputs: int, pixels: int, groups: int, T: int,
                 params: EnergyParams = EnergyParams()) -> LayerEnergy:
    """The figures of one binary layer on AQFP at bitstream length T (see the module docstring)."""
    for label, value in (("fan_in", fan_in), ("outputs", outputs), ("pixels", pixels), ("groups", groups), ("T", T)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{label} must be a positive int, got {value!r}")
    width = (groups * T).bit_length()
    adders = (groups - 1) + width
    buffers = outputs * (fan_in + groups + width * params.register_buffers)
    splitters = fan_in * (outputs - 1) + outputs * adders * params.fa_splitters
    majorities = outputs * (adders * params.fa_majority + width)
    junctions = params.path_balance * (buffers * params.jj_buffer + splitters * params.jj_splitter
                                       + majorities * params.jj_majority)
    cycles = pixels * T
    events = junctions * cycles
    macs = fan_in * outputs * pixels
    reads = fan_in * outputs + fan_in * pixels + outputs * params.threshold_bits
    return LayerEnergy(name=name, macs=macs, buffers=buffers, splitters=splitters, majorities=majorities,
                       junctions=junctions, cycles=cycles, switching_events=events, aqfp=events * params.e_jj,
                       aqfp_cooled=events * params.e_jj * params.cooling,
                       cmos=macs * params.cmos_mac + reads * params.cmos_read_bit)


def aqfp_layers(intmodel) -> list:
    """The layers of `intmodel` on the AQFP accumulator (their payload's core is an `AqfpCore`)."""
    return [lay for lay in intmodel.layers if isinstance(getattr(lay.payload, "core", None), AqfpCore)]


def model_energy(intmodel, *, T: int | None = None, params: EnergyParams = EnergyParams()) -> list[LayerEnergy]:
    """Every AQFP layer's figures, at its own T (or at `T` for all of them)."""
    out = []
    for lay in aqfp_layers(intmodel):
        core = lay.payload.core
        fan_in = lay.payload.fan_in
        out.append(layer_energy(lay.name, fan_in=fan_in, outputs=lay.payload.out_channels,
                                pixels=max(1, _pixels(lay.out_shape)), groups=core.groups(fan_in).count,
                                T=core.T if T is None else T, params=params))
    return out


def _pixels(out_shape) -> int:
    """Output pixels of a layer: H * W of a (C, H, W) output, 1 for a vector."""
    return out_shape[1] * out_shape[2] if len(out_shape) == 3 else 1
