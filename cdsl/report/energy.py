"""Energy per inference of a generated design, from per-operation tables a user can replace.

Three parameter files (JSON, in `cdsl/report/tables/` by default; each states its sources in `notes`):
- CMOS (`cmos_45nm.json`): a multiply-accumulate by operand width, and SRAM reads per bit by memory size;
- CIM (`cim_adc.json`): one ADC conversion by resolution;
- AQFP (`aqfp.json`): overrides of `cdsl.contract.ref.aqfp_energy.EnergyParams`; the AQFP layers'
  energy is that model's (`model_energy`), not a second one.

What is counted, per weighted layer of the integer model:
- a layer on the AQFP accumulator: the AQFP model's cooled energy at the layer's T (its weights are
  crossbar polarities: no MACs or reads on the CMOS side);
- a layer on CIM tiles (its engine's manifest figures list `adc_conversions`): the conversions at the
  layer's ADC width; the analog array, the DACs and the digital shift-and-add are not counted;
- any other weighted layer: every MAC the engine performs (out_channels x fan_in x output pixels,
  pruned zeros included: the MAC engines do not skip them) at the wider operand's width, one weight
  read per MAC (the engines keep no weight registers: a ROM word per step) and one read of each input
  activation per output pixel (the window is held across the output channels), each read at the
  per-bit energy of its memory's size (the weight ROM, the frame buffer).
Requantization, control and the streams between engines are not counted. A layer that holds weight
matrices in another form (the ViT's `patch_embed`, `encoder`, `cls_head`: linears inside the payload,
attention between activations, token counts that vary per sample) has no model here:
`unmodelled_layers` names them, and the report gives no total rather than a total without them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from cdsl.errors import CdslError


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    notes: list[str] = []


def _by_width(v: dict[str, float]) -> dict[str, float]:
    if not v:
        raise ValueError("must not be empty")
    for k, e in v.items():
        if not k.isdigit() or int(k) < 1:
            raise ValueError(f"key {k!r} is not a positive whole number")
        if not (e >= 0 and math.isfinite(e)):
            raise ValueError(f"{k}: energy must be finite and not negative, got {e!r}")
    return v


class CmosTable(_Table):
    mac_pj: dict[str, float]
    read_pj_per_bit: dict[str, float]
    _check = field_validator("mac_pj", "read_pj_per_bit")(_by_width)


class AdcTable(_Table):
    adc_pj: dict[str, float]
    _check = field_validator("adc_pj")(_by_width)


class AqfpTable(_Table):
    params: dict[str, float] = {}


def next_up(table: dict[str, float], value: int, what: str, where: str) -> float:
    """The entry of the smallest listed key >= value (CdslError naming the file when none is)."""
    keys = sorted(int(k) for k in table)
    for k in keys:
        if k >= value:
            return table[str(k)]
    raise CdslError(f"{what} {value} is larger than any the table lists (up to {keys[-1]})", name=where)


def load_table(path: str | Path | None, default: str, schema):
    """A table file (or the bundled default), validated: CdslError with the file and field otherwise."""
    if path is None:
        text = resources.files("cdsl.report").joinpath("tables", default).read_text()
        where = f"cdsl/report/tables/{default}"
    else:
        where = str(path)
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise CdslError(f"cannot read the energy table: {err.strerror}", name=where) from None
    try:
        return schema.model_validate(json.loads(text)), where
    except json.JSONDecodeError as err:
        raise CdslError(f"{where}:{err.lineno}:{err.colno}: not JSON: {err.msg}", name=where) from None
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise CdslError(f"field {field!r}: {first['msg']}", name=where) from None


@dataclass
class Tables:
    cmos: CmosTable
    adc: AdcTable
    aqfp: AqfpTable
    files: dict[str, str]

    @classmethod
    def load(cls, cmos=None, adc=None, aqfp=None) -> "Tables":
        c, cw = load_table(cmos, "cmos_45nm.json", CmosTable)
        a, aw = load_table(adc, "cim_adc.json", AdcTable)
        q, qw = load_table(aqfp, "aqfp.json", AqfpTable)
        return cls(c, a, q, {"cmos": cw, "adc": aw, "aqfp": qw})


@dataclass
class LayerEnergy:
    name: str
    mapping: str  # cmos | cim | aqfp
    macs: int
    mac_j: float = 0.0
    weight_read_j: float = 0.0
    act_read_j: float = 0.0
    adc_j: float = 0.0
    adc_conversions: int = 0
    aqfp_j: float = 0.0

    @property
    def total_j(self) -> float:
        return self.mac_j + self.weight_read_j + self.act_read_j + self.adc_j + self.aqfp_j

    def as_dict(self) -> dict:
        return {"name": self.name, "mapping": self.mapping, "macs": self.macs, "mac_j": self.mac_j,
                "weight_read_j": self.weight_read_j, "act_read_j": self.act_read_j, "adc_j": self.adc_j,
                "adc_conversions": self.adc_conversions, "aqfp_j": self.aqfp_j, "total_j": self.total_j}


def _aqfp_params(table: AqfpTable, where: str):
    from cdsl.contract.ref.aqfp_energy import EnergyParams

    text = ",".join(f"{k}={v!r}" for k, v in table.params.items())
    try:
        return EnergyParams().with_overrides(text)
    except ValueError as err:
        raise CdslError(str(err), name=where) from None


def model_energy(intmodel, engine_figures: dict[str, dict], tables: Tables) -> list[LayerEnergy]:
    """Per weighted layer of `intmodel`: its energy per inference (see the module docstring).
    `engine_figures` is rtl/manifest.json's cycles.engines (the CIM layers' conversions)."""
    from cdsl.contract.ref import aqfp_energy

    aqfp = {e.name: e for e in aqfp_energy.model_energy(intmodel, params=_aqfp_params(tables.aqfp, tables.files["aqfp"]))}
    out = []
    for lay in intmodel.layers:
        p = lay.payload
        weight = getattr(p, "weight", None)
        w_bits = getattr(p, "w_bits", None)
        if weight is None or w_bits is None:
            continue
        outs, fan_in = int(weight.shape[0]), int(weight.shape[1])
        pixels = math.prod(lay.out_shape[1:]) if len(lay.out_shape) > 1 else 1
        macs = outs * fan_in * pixels
        a_bits = max(t.bits for t in lay.in_types)
        figures = engine_figures.get(lay.name, {})
        if lay.name in aqfp:
            out.append(LayerEnergy(lay.name, "aqfp", macs, aqfp_j=aqfp[lay.name].aqfp_cooled))
        elif "adc_conversions" in figures:
            adc_bits = int(p.core.adc)
            conv = int(figures["adc_conversions"])
            e = next_up(tables.adc.adc_pj, adc_bits, "ADC bits", tables.files["adc"]) * 1e-12
            out.append(LayerEnergy(lay.name, "cim", macs, adc_j=conv * e, adc_conversions=conv))
        else:
            mac = next_up(tables.cmos.mac_pj, max(w_bits, a_bits), "operand bits", tables.files["cmos"]) * 1e-12
            rom_bits = int(weight.size) * w_bits
            in_elems = math.prod(lay.in_shapes[0])
            frame_bits = in_elems * a_bits
            rw = next_up(tables.cmos.read_pj_per_bit, rom_bits, "weight memory bits", tables.files["cmos"]) * 1e-12
            ra = next_up(tables.cmos.read_pj_per_bit, frame_bits, "frame buffer bits", tables.files["cmos"]) * 1e-12
            out.append(LayerEnergy(lay.name, "cmos", macs, mac_j=macs * mac, weight_read_j=macs * w_bits * rw,
                                   act_read_j=fan_in * pixels * a_bits * ra))
    return out


def unmodelled_layers(intmodel, modelled: list[LayerEnergy]) -> list[str]:
    """Layers holding weight matrices (2-D integer arrays, anywhere in their payload) that `model_energy`
    does not count: 'e1 (encoder)'."""
    import dataclasses

    import numpy as np

    def has_matrix(value) -> bool:
        if isinstance(value, np.ndarray):
            return value.ndim == 2 and value.dtype.kind in "iu"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return any(has_matrix(getattr(value, f.name)) for f in dataclasses.fields(value))
        if isinstance(value, (tuple, list)):
            return any(has_matrix(v) for v in value)
        return False

    done = {e.name for e in modelled}
    return [f"{lay.name} ({lay.kind})" for lay in intmodel.layers if lay.name not in done and has_matrix(lay.payload)]
