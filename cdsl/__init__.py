"""cdsl: a co-design language for compressed neural networks."""

__version__ = "0.1.0"
