"""One module per MAC core type of the contract: how a dense/conv2d layer with that core is planned
onto an engine (see `cdsl.hw.registry.register_core`)."""
