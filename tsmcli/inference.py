"""The one home of inference: a model (PyTorch, onnxruntime or OpenVINO) with its preset, labels, precision
and device, and the preprocessing its preset defines, for files, frame folders and streamed frames.

    predictor = tsmcli.load_predictor("best.pth")        # a checkpoint, or a file `tsm export` wrote
    predictor("clip.mp4").top                            # [(index, label, prob), ...], best first
    clip = predictor.transform("clip.mp4", "accurate")   # the clip the model takes under a test scheme
    predictor.frame_transform(frame)                     # one (H, W, 3) uint8 frame -> (1, 3, h, w)

Every command that runs a trained model (predict, test, stream, explain, extract, export's checks,
benchmark) reaches it through here, so that a video is read the same way everywhere.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol

import numpy as np
import torch

from .api import load_model
from .data.pipeline import STEP_TYPES, output_size, read_clip
from .data.schemes import SCHEMES, scheme_pipeline
from .data.transforms import Clip, Normalize
from .devices import amp_dtype
from .errors import OptionError, UserError
from .models.recognizer import top_classes
from .runtime.engines import BACKENDS, SUFFIX_BACKEND, is_exported
from .runtime.exported import open_exported


class ClipModel(Protocol):
    """What inference needs of a model, whichever engine runs it: a models.Recognizer (PyTorch) or a
    runtime.exported.ExportedModel / ExportedStep (an exported file)."""

    @property
    def preset(self) -> Dict[str, Any]: ...  # the resolved preset the model was built from
    @property
    def labels(self) -> Optional[List[str]]: ...  # its class names, where known
    @property
    def num_segments(self) -> int: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def multi_label(self) -> bool: ...  # sigmoid per class (the preset's data.multi_label) instead of softmax
    @property
    def average_clips(self) -> Optional[str]: ...
    @property
    def exported(self) -> bool: ...  # runs in an engine outside PyTorch
    @property
    def kind(self) -> str: ...  # "whole" (clips in, probabilities out) or "stream_step" (one frame and a state)
    @property
    def device(self) -> torch.device: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...  # (N, V*T, 3, H, W) -> (N, K)

    def describe(self) -> str: ...


class ClipTransform:
    """A video file or a folder of JPEG frames -> the Clip a model takes under one of `tsm test`'s schemes
    (data/schemes.py): imgs (V*T, 3, H, W), meta (frame_inds, fps, ...). Picklable, for loader workers.
    normalize=False leaves the frames uint8; normalize(imgs) then does the rest."""

    def __init__(self, data_cfg, scheme="preset", normalize=True):
        if scheme not in SCHEMES:
            raise OptionError("scheme", scheme, f"use one of {', '.join(SCHEMES)}")
        steps = scheme_pipeline(data_cfg, scheme)
        normalizing = [s for s in steps if s["type"] == "Normalize"]
        self.normalize_step = {k: v for k, v in normalizing[0].items() if k != "type"} if normalizing else None
        self.steps = steps if normalize else [s for s in steps if s["type"] != "Normalize"]
        self.scheme, self.filename_tmpl, self.decoder = scheme, data_cfg["filename_tmpl"], data_cfg["decoder"]

    @property
    def size(self):
        """(height, width) of the frames it gives."""
        return output_size(self.steps)

    def __call__(self, video, rng=None) -> Clip:
        """Raises video.MediaError when the video cannot be read."""
        return read_clip(str(video), self.steps, self.filename_tmpl, rng, decoder=self.decoder)

    def normalize(self, imgs):
        """uint8 frames of a normalize=False transform -> what the model takes."""
        if self.normalize_step is None:
            return imgs
        return Normalize(**self.normalize_step)(Clip(imgs, None, {}), None).imgs


class FrameTransform:
    """One streamed frame, uint8 (H, W, 3) -> (1, 3, h, w): the spatial steps of the preset's validation
    pipeline (resize, centre crop, normalise), as `efficient` applies them to a clip's frames."""

    def __init__(self, preset):
        steps = scheme_pipeline(preset["data"], "efficient")[1:]
        self.transforms = [STEP_TYPES[s["type"]](**{k: v for k, v in s.items() if k != "type"}) for s in steps]

    def __call__(self, frame):
        clip = Clip(torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None], None, {})
        for transform in self.transforms:
            clip = transform(clip, None)
        return clip.imgs


@dataclass(frozen=True)
class TopClass:
    index: int  # the class's index in the model's output
    label: str
    prob: float

    def __iter__(self):  # index, label, prob = top_class
        return iter((self.index, self.label, self.prob))


@dataclass
class Prediction:
    video: str
    probs: torch.Tensor  # (K,) probabilities (a multi-label model's: each class's sigmoid)
    top: List[TopClass]  # best first: the `top` best, or for a multi-label model those at or above the threshold

    def to_json(self):
        """What `tsm predict --json` prints for the video."""
        return {"video": self.video, "top": [{"index": c.index, "label": c.label, "prob": round(c.prob, 6)}
                                             for c in self.top],
                "scores": [round(float(p), 6) for p in self.probs]}


class Predictor:
    """A model ready for inference: its preprocessing, and its probabilities under the precision it was
    loaded with. dtype: the autocast dtype the PyTorch model runs under (None: as it is)."""

    def __init__(self, model: ClipModel, dtype: Optional[torch.dtype] = None):
        self.model, self.dtype = model, dtype
        self.preset = model.preset
        self.labels = model.labels or [str(i) for i in range(model.num_classes)]
        self.multi_label = model.multi_label
        self._transforms: Dict[Any, ClipTransform] = {}
        self._frame_transform: Optional[FrameTransform] = None

    @property
    def device(self):
        return self.model.device

    @property
    def num_segments(self):
        return self.model.num_segments

    def describe(self):
        precision = f", autocast {str(self.dtype).replace('torch.', '')}" if self.dtype is not None else ""
        return self.model.describe() + precision

    def clip_transform(self, scheme="preset", normalize=True) -> ClipTransform:
        if (scheme, normalize) not in self._transforms:
            self._transforms[scheme, normalize] = ClipTransform(self.preset["data"], scheme, normalize)
        return self._transforms[scheme, normalize]

    def transform(self, video, scheme="preset") -> Clip:
        """The clip of a video file or frame folder under a scheme (video.MediaError if unreadable)."""
        return self.clip_transform(scheme)(video)

    @property
    def frame_transform(self) -> FrameTransform:
        if self._frame_transform is None:
            self._frame_transform = FrameTransform(self.preset)
        return self._frame_transform

    @torch.no_grad()
    def probabilities(self, clips):
        """clips (N, V*T, 3, H, W) -> (N, K) probabilities in fp32 on the CPU, views averaged as the preset
        says (average_clips)."""
        device = self.device
        with torch.autocast(device.type, dtype=self.dtype, enabled=self.dtype is not None):
            return self.model(clips.to(device)).float().cpu()

    def top(self, probs, top=5, threshold=0.5):
        """TopClass list of (K,) probabilities: the `top` best, or for a multi-label model every class at or
        above `threshold`."""
        return [TopClass(i, self.labels[i], float(probs[i]))
                for i in top_classes(probs, top, threshold if self.multi_label else None)]

    def predict(self, video, top=5, scheme="preset", threshold=0.5) -> Prediction:
        """The top classes of one video file or frame folder."""
        probs = self.probabilities(self.transform(video, scheme).imgs[None])[0]
        return Prediction(str(video), probs, self.top(probs, top, threshold))

    __call__ = predict


def load_predictor(model, preset=None, device="cpu", fast=True, amp=None, backend=None, threads=None,
                   **overrides) -> Predictor:
    """A Predictor of a checkpoint (ours, mmaction2 0.x or the original TSM code's; a path, URL or zoo file
    name) or of a file `tsm export` wrote (.onnx, OpenVINO .xml).

    fast: the PyTorch fast path (BatchNorm folded, channels-last; models/fast.py). amp: "bf16" (CPU or GPU;
    on the fast path the backbone is converted once, else autocast) or "fp16" (GPU); an OpenVINO file runs
    at bf16 with amp="bf16". backend: what runs it, checked against the file ("torch" for checkpoints;
    a checkpoint for onnxruntime or OpenVINO is exported first: tsm export, or export.cache.
    load_predictor_on, which caches the export). threads: an
    engine's threads [default: torch's]. overrides: preset keys as in build_model (data__decoder="pyav")."""
    if backend == "pytorch":
        backend = "torch"
    if backend is not None and backend not in BACKENDS:
        raise OptionError("backend", backend, f"use one of {', '.join(BACKENDS)}")
    if is_exported(model):
        return Predictor(_open_exported(model, preset, device, amp, backend, threads, overrides))
    if backend not in (None, "torch"):
        raise OptionError("backend", backend, f"{model} is a checkpoint; export it first (tsm export), or run it "
                          "with the PyTorch backend")
    dtype = amp_dtype(amp, torch.device(device))
    converted = fast and dtype == torch.bfloat16
    loaded = load_model(model, preset=preset, device=device, fast=fast, amp="bf16" if converted else None,
                        **overrides)
    return Predictor(loaded, None if converted else dtype)


def _open_exported(path, preset, device, amp, backend, threads, overrides):
    if torch.device(device).type != "cpu":
        raise OptionError("device", str(device), f"exported models run on the CPU here ({path})")
    given = SUFFIX_BACKEND[Path(str(path)).suffix.lower()]
    if backend not in (None, "torch", given):
        raise OptionError("backend", backend, f"{path} runs in {given}")
    if preset is not None:
        raise OptionError("preset", preset, f"{path} carries its preset; export again to change it")
    if amp not in (None, "bf16"):
        raise OptionError("amp", amp, "exported models run at the precision they were exported at (an OpenVINO "
                          "model also at bf16)")
    if amp and given != "openvino":
        raise OptionError("amp", amp, "onnxruntime has no bf16 convolutions on the CPU; use the openvino backend, "
                          "or PyTorch")
    model = open_exported(path, threads=threads, precision="bf16" if amp else None)
    unknown = [key for key in overrides if not key.startswith("data__")]
    if unknown:
        raise UserError(f"{path} carries its model; only how input is read can change ({', '.join(unknown)})")
    for key, value in overrides.items():  # e.g. the decoder
        model.preset["data"][key.split("__", 1)[1]] = value
    return model


def decoder_override(decoder):
    """The load_predictor / load_model keyword of a --decoder choice ({} for none: the preset's data.decoder),
    checked to work here first, so that a missing decoder says what to install before a model loads."""
    if not decoder:
        return {}
    from .video import resolve_decoder

    resolve_decoder(decoder)
    return {"data__decoder": decoder}

