"""cocotb test modules (importable by the simulator as `cdsl.sim.tb.<name>`)."""
