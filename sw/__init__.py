"""The software path: PyTorch training with compression in the loop, and export to the integer model.

    cdsl.sw.build.build(spec, *, scales=Scales()) -> Net          trainable module (every op kind)
    cdsl.sw.train.train(spec, *, epochs=None, seed=None, base=None, float_twin=True, log=None,
                        scales=Scales(), threads=1) -> TrainResult
    cdsl.sw.train.save_run(result, run_dir, *, spec_text) -> Path
    cdsl.sw.export.export(net) -> IntModel
    cdsl.sw.data.load(data, *, input_shape, classes, base=None) -> Dataset
    cdsl.sw.evaluate.evaluate_run(run_dir) -> dict

Each IR op trains and exports through its kind (`cdsl.sw.kinds.<kind>`, found by `registry.sw_kind`);
MAC cores' training twins live in `cdsl.sw.cores`. The integer model and the golden model are the
contract's (`cdsl.contract.intmodel`, `cdsl.contract.golden`).
Submodules are imported explicitly (no re-exports here).
"""
