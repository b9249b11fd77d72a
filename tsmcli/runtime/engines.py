"""Running an exported file: onnxruntime for .onnx graphs, OpenVINO for .xml IR, behind one interface:
`engine.run({input name: array}) -> [output arrays]`, `engine.metadata` (what `tsm export` wrote)."""
import json
from pathlib import Path

import numpy as np

from ..errors import UserError

BACKENDS = ("torch", "onnxruntime", "openvino")
SUFFIX_BACKEND = {".onnx": "onnxruntime", ".xml": "openvino"}
# OpenVINO's names for the precision its CPU plugin computes the non-quantized layers in. An int8 IR
# computes what NNCF left in float in bf16; the export's held-out check judges the file as it runs so.
OPENVINO_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "bf16"}


def onnx_modules():
    """(onnx, onnxruntime), or a UserError naming the extra."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise UserError("export needs onnx and onnxruntime: pip install 'tsm[deploy]'") from None
    return onnx, onnxruntime


def session(path, threads=None):
    """An onnxruntime CPU session (threads: intra-op threads, e.g. torch's, for timing side by side)."""
    _, ort = onnx_modules()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def openvino_module():
    try:
        import openvino
    except ImportError:
        raise UserError("OpenVINO files need the openvino extra: pip install 'tsm[openvino]'") from None
    return openvino


def is_exported(path):
    return Path(str(path)).suffix.lower() in SUFFIX_BACKEND


def read_metadata(path):
    """The "tsm" metadata `tsm export` writes into a .onnx graph or an OpenVINO .xml (UserError if none)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    if path.suffix.lower() == ".onnx":
        onnx, _ = onnx_modules()
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        text = props.get("tsm")
    else:
        model = openvino_module().Core().read_model(str(path))
        text = model.get_rt_info(["tsm"]).astype(str) if model.has_rt_info(["tsm"]) else None
    if not text:
        raise UserError(f"{path}: no tsm metadata (input layout, preset, labels): export it with `tsm export`")
    return json.loads(text)


class OnnxRuntimeEngine:
    backend = "onnxruntime"

    def __init__(self, path, threads=None, metadata=None):
        self.session = session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.metadata = metadata if metadata is not None else read_metadata(path)

    def run(self, feeds):
        return self.session.run(None, feeds)

    def prepare(self, shapes):
        """Nothing to do: onnxruntime plans dynamic shapes as they come."""


class OpenVinoEngine:
    """An OpenVINO CPU model, compiled once per input shape (static shapes run faster than dynamic ones).
    precision: fp32, bf16 or int8 (the file's metadata by default) sets the inference precision hint."""
    backend = "openvino"

    def __init__(self, path, threads=None, metadata=None, precision=None):
        ov = openvino_module()
        self.core = ov.Core()
        self.model = self.core.read_model(str(path))
        self.metadata = metadata if metadata is not None else read_metadata(path)
        self.precision = precision or self.metadata.get("precision", "fp32")
        self.config = {"INFERENCE_PRECISION_HINT": OPENVINO_HINT[self.precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self.input_names = [i.get_any_name() for i in self.model.inputs]
        self.compiled = {}

    def prepare(self, shapes):
        """Compile for these input shapes now, so that the first call's latency is like the rest."""
        self._request(shapes)

    def _request(self, shapes):
        key = tuple(tuple(shape) for shape in shapes)
        if key not in self.compiled:
            model = self.model.clone()
            model.reshape(dict(zip(self.input_names, shapes)))
            self.compiled[key] = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        return self.compiled[key]

    def run(self, feeds):
        arrays = [np.ascontiguousarray(feeds[name]) for name in self.input_names]
        request = self._request([a.shape for a in arrays])
        request.infer(arrays)  # its outputs are views of buffers the next call reuses: copy them
        return [np.array(request.get_output_tensor(i).data) for i in range(len(request.model_outputs))]


def open_engine(path, threads=None, precision=None):
    """The engine for an exported file, by its suffix (.onnx: onnxruntime, .xml: OpenVINO)."""
    path = Path(path)
    backend = SUFFIX_BACKEND.get(path.suffix.lower())
    if backend is None:
        raise UserError(f"{path}: exported models are .onnx (onnxruntime) or .xml (OpenVINO) files")
    metadata = read_metadata(path)
    if backend == "openvino":
        return OpenVinoEngine(path, threads, metadata, precision)
    if precision not in (None, metadata.get("precision", "fp32")):
        raise UserError(f"{path} is a {metadata.get('precision', 'fp32')} ONNX graph: its precision was chosen at "
                        "export (tsm export --precision)")
    return OnnxRuntimeEngine(path, threads, metadata)
