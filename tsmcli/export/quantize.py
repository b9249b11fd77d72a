"""Post-training int8 quantization, calibrated on the user's clips: onnxruntime's static QDQ quantizer
for ONNX graphs, NNCF for OpenVINO models. Weights per output channel (int8), activations per tensor."""
import contextlib
import sys

import numpy as np

from ..errors import UserError

# The clips NNCF and onnxruntime calibrate on by default. More clips did not agree better on the toy
# models (docs/benchmarks.md, "int8 calibration clips"): 32 covers every class of a small dataset
# several times over and takes seconds; a dataset of hundreds of classes may want more.
DEFAULT_CALIBRATION_CLIPS = 32


def quantize_onnx(fp32_path, out_path, calibration):
    """An int8 QDQ graph of `fp32_path` at `out_path` (the metadata carried over)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Clips(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{"clip": clip.numpy().astype(np.float32)} for clip in calibration.clips])

        def get_next(self):
            return next(self.feeds, None)

    prepared = str(out_path) + ".pre.onnx"
    try:
        quant_pre_process(str(fp32_path), prepared, skip_symbolic_shape=True)
        quantize_static(prepared, str(out_path), Clips(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        import os

        if os.path.exists(prepared):
            os.remove(prepared)
    source, graph = onnx.load(str(fp32_path)), onnx.load(str(out_path))
    del graph.metadata_props[:]
    graph.metadata_props.extend(source.metadata_props)
    onnx.save(graph, str(out_path))


def quantize_openvino(model, calibration):
    """The NNCF-quantized copy of an OpenVINO model."""
    try:
        import nncf
    except ImportError:
        raise UserError("int8 OpenVINO models need NNCF: pip install 'tsm[openvino]'") from None
    dataset = nncf.Dataset([clip.numpy().astype(np.float32) for clip in calibration.clips])
    with contextlib.redirect_stdout(sys.stderr):  # its progress bars: stdout is for results (--json)
        return nncf.quantize(model, dataset, subset_size=len(calibration), preset=nncf.QuantizationPreset.PERFORMANCE)
