"""The hardware path: Amaranth RTL of an IntModel, one Component per file, named for its hardware.

- `plan`: IntModel -> NetworkPlan, a graph of engine `Node`s (each layer planned by its kind,
  `registry.plan_layer`), the buffers a join needs, the runtime-setting registers, lanes and folding,
  and the cycle model (`network_cycles`, `cycle_report`).
- `kinds/`, `cores/`: one module per payload type / MAC core type: its planner, plan node, cycle model.
- Components: `mac_engine.MacEngine`, `pool_engine.PoolEngine`, `add_engine.AddEngine`, `relu.Relu`,
  and their parts (`frame_buffer.FrameBuffer`, `window_generator.WindowGenerator`, `mac.Mac`,
  `bitserial_mac.BitSerialMac`, `pool_reduce.PoolReduce`, `requant_unit.RequantUnit`); the glue
  (`stream_fork.StreamFork`, `stream_fifo.StreamFifo`, `register_bank.RegisterBank`); the top
  (`network.Network`).
- `generate`: network.sv + manifest.json (`cdsl gen`).
"""
