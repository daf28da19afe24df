"""The cdsl language: grammar, parser, checker, printer and per-layer analysis."""

from .parser import load_source, parse, parse_file, parse_source
from .printer import format_source, model_digest, print_spec

__all__ = ["parse", "parse_file", "parse_source", "load_source", "print_spec", "format_source", "model_digest"]
