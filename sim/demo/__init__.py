"""Small demonstration components used by the simulation smoke tests and the speed benchmark."""
