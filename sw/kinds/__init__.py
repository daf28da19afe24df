"""One module per IR op: its training module and its export (see `cdsl.sw.registry`)."""
