"""The integer contract: the layer that the software path (`cdsl.sw`) and the hardware path
(`cdsl.hw`) both import, and that imports neither (only the language below it).

- `intmodel`: the IntModel schema (what training exports, what golden and RTL consume): layers with
  a typed payload per kind, QType, Requant, runtime `Setting`s; save/load and a digest.
- `codec`: typed JSON + arrays for frozen dataclasses (payloads, hardware plans).
- `ref/`: one module per kind or MAC core: its payload (registered with the codec) and the
  pure-integer reference of its arithmetic, the only place that defines it.
- `golden`: integer inference of an IntModel (each layer's `payload.run`), input quantization.
- `kinds`: imports every module of `ref/` so that every payload type is registered.
"""
