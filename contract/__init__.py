"""The integer contract: the layer that the software path (`cdsl.sw`) and the hardware path
(`cdsl.hw`) both import, and that imports neither.

- `intmodel`: the IntModel schema (what training exports, what golden and RTL consume).
- `ref/`: the pure-integer reference of every block; the only place that defines its arithmetic.
"""
