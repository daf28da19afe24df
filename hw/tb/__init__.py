"""cocotb testbenches and simulation wrappers of the hardware blocks (run by tests/hw)."""
