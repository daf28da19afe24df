"""Amaranth hardware of cdsl: one Component per file, named for its hardware.

- `mac.Mac` (bit-parallel MAC), `bitserial_mac.BitSerialMac`, `requant.Requant`,
  `pool_reduce.PoolReduce`, `window_generator.WindowGenerator`, `frame_buffer.FrameBuffer`,
  `relu.Relu`, `layer_engine.LayerEngine` (one dense/conv/pool layer), `network.Network` (the top).
- `plan`: IntModel -> NetworkPlan (engines, widths from bit growth, lanes, folding) and the
  cycle model (`mac_cycles`, `engine_delay`, `network_cycles`).
- `generate`: Verilog + manifest (`cdsl gen`), Verilator lint.
- `pysim.run_streams`: Amaranth-simulator stream runner for tests; `synth`: random IntModels.
- `ref/`: the pure-integer reference of every block; `tb/`: cocotb testbenches and wrappers.
"""
