"""Cost reports of run folders (`cdsl report`) and design-space sweeps (`cdsl sweep`)."""
