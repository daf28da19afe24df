"""The software path: PyTorch training with compression in the loop, export, integer golden model.

    cdsl.sw.build.build(spec, *, scales=Scales()) -> Net          trainable module (every op kind)
    cdsl.sw.train.train(spec, *, epochs=None, seed=None, base=None, float_twin=True, log=None,
                        scales=Scales(), threads=1) -> TrainResult
    cdsl.sw.train.save_run(result, run_dir, *, spec_text) -> Path
    cdsl.sw.export.export(net) -> IntModel
    cdsl.contract.golden.golden(intmodel, x_int, *, trace=False)        integer inference (torch int64)
    cdsl.contract.golden.quantize_input(intmodel, x_float) -> x_int     round half up, clamp
    cdsl.contract.golden.predict(intmodel, x_int) -> class indices      argmax, lowest index on ties
    cdsl.sw.data.load(data, *, input_shape, classes, base=None) -> Dataset
    cdsl.sw.evaluate.evaluate_run(run_dir) -> dict
    cdsl.contract.intmodel.IntModel                                     the exported format (save/load)

Submodules are imported explicitly (no re-exports here, so `cdsl.contract.golden` stays the module).
"""
