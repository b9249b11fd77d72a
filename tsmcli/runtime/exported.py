"""An exported file behind the interface of a PyTorch Recognizer (inference.ClipModel), so that the
inference home runs either. Everything it needs (preset, class names, the view layout) comes from the
file's metadata.

    model = open_exported("mine.xml")      # or .onnx
    probs = model(clip)                    # (N, V*T, 3, H, W) -> (N, K), views averaged as the preset says
"""
import copy

import numpy as np
import torch

from ..errors import UserError
from ..models.recognizer import probabilities
from .engines import open_engine


def open_exported(path, threads=None, precision=None):
    """The ExportedModel (whole recognizer) or ExportedStep (streaming step) of a file `tsm export` wrote."""
    engine = open_engine(path, threads or torch.get_num_threads(), precision)
    meta = engine.metadata
    kind = meta.get("kind", "whole")
    return (ExportedStep if kind == "stream_step" else ExportedModel)(path, engine)


class _Exported:
    exported = True
    kind = "whole"

    def __init__(self, path, engine):
        from ..presets import resolve_preset

        meta = engine.metadata
        # the resolved preset (files exported before tsm wrote it have only its name); keys added since the
        # file was written take their defaults from the base preset
        self.preset = resolve_preset(meta.get("preset_config") or meta["preset"])
        meta.setdefault("preset_config", copy.deepcopy(self.preset))
        self.path, self.engine, self.metadata = str(path), engine, meta
        self.labels = meta.get("labels")
        self.num_classes = self.preset["model"]["num_classes"]
        self.num_segments = self.preset["model"]["num_segments"]
        self.average_clips = self.preset["model"]["average_clips"]
        self.multi_label = self.preset["data"]["multi_label"]
        self.precision = getattr(engine, "precision", meta.get("precision", "fp32"))
        self.backend = engine.backend
        self.device = torch.device("cpu")
        self.training = False

    def eval(self):
        return self

    def to(self, device):
        if torch.device(device).type != "cpu":
            raise UserError(f"{self.path}: exported models run on the CPU here ({self.backend}); use the checkpoint "
                            "for --device cuda")
        return self

    def describe(self):
        return f"{self.path} ({self.backend}, {self.precision})"


class ExportedModel(_Exported):
    """A whole-recognizer file: logits(x) and forward(x) as Recognizer's, on any number of views."""

    def __init__(self, path, engine):
        super().__init__(path, engine)
        self.kind = "whole"

    def logits(self, x):
        """(N, V*T, 3, H, W) -> per-view logits (N, V, K)."""
        logits = self._run_views(x)[1]
        return torch.from_numpy(logits).view(x.shape[0], -1, logits.shape[-1])

    def forward_features(self, x):
        """(N, V*T, 3, H, W) -> pooled per-frame features (N, V, T', C), the graph's "features" output."""
        if "features" not in self.metadata.get("outputs", []):
            raise UserError(f"{self.path} was exported before exported models carried features: export it again "
                            "(tsm export), or extract from the checkpoint")
        features = self._run_views(x)[2]
        return torch.from_numpy(features).view((x.shape[0], -1) + features.shape[1:])

    def _run_views(self, x):
        """The graph's outputs for every view of (N, V*T, 3, H, W), one view per graph batch row."""
        n, vt = x.shape[:2]
        if vt % self.num_segments:
            raise ValueError(f"input has {vt} frames per video, not a multiple of num_segments={self.num_segments}")
        views = x.reshape((n * (vt // self.num_segments), self.num_segments) + tuple(x.shape[2:]))
        return self.engine.run({"clip": np.ascontiguousarray(views.float().numpy())})

    def __call__(self, x):
        scores = self.logits(x)
        if self.average_clips == "prob":
            return probabilities(scores, self.multi_label).mean(dim=1)
        if self.average_clips == "score":
            return scores.mean(dim=1)
        return scores


class ExportedStep(_Exported):
    """A streaming-step file (tsm export --stream): stepped by tsm stream in incremental mode."""

    def __init__(self, path, engine):
        super().__init__(path, engine)
        self.kind = "stream_step"
        self.input_size = tuple(self.metadata["input"][2:])

    def __call__(self, x):
        raise UserError(f"{self.path} is a streaming step (tsm export --stream): it runs in tsm stream only; export "
                        "the whole model for predict, test and benchmark")

    logits = __call__

    def stream(self):
        return ExportedStream(self)


class ExportedStream:
    """Holds the state of an exported streaming step: step(frame (B, 3, H, W)) -> logits (B, K)."""

    def __init__(self, step):
        self.step_file, self.engine = step, step.engine
        self.dtype = np.dtype(step.metadata.get("state_dtype", "float32"))
        self.shapes = step.metadata["state_shapes"]
        self.names = ["frame"] + [f"state_in_{i}" for i in range(len(self.shapes))]
        self.state = None
        self.engine.prepare([step.metadata["input"], *self.shapes])  # batch 1, as tsm stream steps

    def step(self, frame):
        if tuple(frame.shape[-2:]) != self.step_file.input_size:
            raise UserError(f"{self.step_file.path} takes {self.step_file.input_size[1]}x{self.step_file.input_size[0]} "
                            f"frames, the preprocessing gives {frame.shape[-1]}x{frame.shape[-2]}")
        batch = frame.shape[0]
        if self.state is None:
            self.state = [np.zeros([batch] + shape[1:], self.dtype) for shape in self.shapes]
        logits, *self.state = self.engine.run(dict(zip(self.names, [frame.float().numpy(), *self.state])))
        return torch.from_numpy(logits)
