"""One module per payload type: its hardware planner (see `cdsl.hw.registry`)."""
