"""Running the files `tsm export` writes: onnxruntime for .onnx graphs, OpenVINO for .xml models
(engines.py), behind the interface a PyTorch Recognizer has (exported.py), so that the inference home
(tsmcli.inference) runs either. Needs pip install 'tsm[deploy]' (ONNX) or 'tsm[openvino]'."""
