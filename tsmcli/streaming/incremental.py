"""Incremental streaming of an online TSM model: one frame per step at the cost of one 2D frame.

Each shifted layer keeps the channels its online shift moves forward in time, from the previous
step: the state. `StreamStep` is stateless (frame and state in, logits and state out), so it traces and
exports as a graph; `IncrementalStream` holds the state between calls. With zero state at the start
(as the offline shift zero-pads the first frame), step t's logits equal the offline model's logits of
frame t before the segment average.
"""
import copy
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..models.shift import ShiftedConv2d, TemporalShift

WINDOW_MODE = "use --mode window (exact, re-runs the window)"


def check_streamable(model, instead=WINDOW_MODE, checkpoint=None):
    """Incremental streaming needs a causal network: the online shift, no temporal pool, no non-local
    blocks (both mix a whole window of frames). Raises UserError saying what to do instead (`instead`:
    the alternative in the caller's own options; `checkpoint`: the model's file, for the command that
    fine-tunes it)."""
    cfg = model.preset["model"]
    name = model.preset["name"] or "this model"
    if cfg["temporal_pool"] or cfg["non_local"]:
        kind = "temporal pooling" if cfg["temporal_pool"] else "non-local blocks"
        raise UserError(f"{name} has {kind}, which mix a whole window of frames: it cannot stream one frame at a "
                        f"time; {instead}")
    if cfg["shift"] and cfg["shift_mode"] != "online":
        raise UserError(f"{name} shifts both ways: its frames need the next frame, which a stream does not have "
                        f"yet. Either {instead}, or fine-tune an online model: "
                        f"tsm finetune --from {checkpoint or 'CKPT'} -p {_preset_argument(model.preset, checkpoint)} "
                        "--set model.shift_mode=online")


def _preset_argument(preset, checkpoint):
    """What `-p` takes to rebuild this model: its built-in preset's name, else the resolved preset that
    training wrote beside the checkpoint (WORK_DIR/config.yaml), else a placeholder for the user's file."""
    from ..presets import preset_names

    if preset.get("name") in preset_names():
        return preset["name"]
    if checkpoint is not None and (Path(checkpoint).parent / "config.yaml").is_file():
        return str(Path(checkpoint).parent / "config.yaml")
    return "PRESET.yaml (the file it was trained from)"


class _Slots:
    """The state passed in to and out of one step, shared by the cached shifts of one StreamStep."""

    def __init__(self):
        self.inputs, self.outputs = [], []


class _CachedShift(nn.Module):
    """The online shift of one frame: channels [0, 2*fold) come from the previous step's frame."""

    def __init__(self, shift_div, slots, index):
        super().__init__()
        self.shift_div, self.slots, self.index = shift_div, slots, index

    def forward(self, x):
        moved = 2 * (x.shape[1] // self.shift_div)
        previous = self.slots.inputs[self.index]
        if previous is None:  # the first step, as the offline shift zero-pads the first frame
            previous = torch.zeros_like(x[:, :moved])
        self.slots.outputs[self.index] = x[:, :moved]
        return torch.cat([previous, x[:, moved:]], dim=1)


class _CachedShiftConv2d(nn.Module):
    def __init__(self, conv, shift):
        super().__init__()
        self.conv, self.shift = conv, shift

    def forward(self, x):
        return self.conv._conv_forward(self.shift(x), self.conv.weight, self.conv.bias)


class StreamStep(nn.Module):
    """(frame (B, 3, H, W), *state) -> (logits (B, K), *new state): one step of an online TSM model,
    sharing its weights. `initial_state(batch, height, width)` gives the zero state."""

    def __init__(self, model):
        super().__init__()
        check_streamable(model)
        self.fc = model.head.fc
        self.mean, self.std = model.mean, model.std
        self.compute_dtype = model.compute_dtype
        self.slots = _Slots()
        self.backbone, self.num_states = _with_cached_shifts(model.backbone, self.slots)
        self.slots.outputs = [None] * self.num_states

    def forward(self, frame, *state):
        if len(state) != self.num_states:
            raise ValueError(f"expected {self.num_states} state tensors, got {len(state)}")
        if self.mean is not None:
            frame = (frame.float() - self.mean) / self.std
        self.slots.inputs = list(state)
        features = self.backbone(frame if self.compute_dtype is None else frame.to(self.compute_dtype)).float()
        logits = self.fc(features.mean(dim=(2, 3)))
        new_state = tuple(self.slots.outputs)
        self.slots.inputs, self.slots.outputs = [], [None] * self.num_states
        return (logits, *new_state)

    @torch.no_grad()
    def initial_state(self, batch, height, width, device="cpu", dtype=torch.float32):
        """Zeros of the shape each cached layer keeps (found by one probe step at this frame size)."""
        _, *state = self(torch.zeros(batch, 3, height, width, device=device, dtype=dtype),
                         *([None] * self.num_states))
        return tuple(torch.zeros_like(s) for s in state)


def _with_cached_shifts(backbone, slots):
    """A copy of the module tree whose shifts read and write the slots (parameters shared), and the
    number of shifts."""
    count = 0

    def replace(module):
        nonlocal count
        if isinstance(module, (ShiftedConv2d, TemporalShift)):
            shift = _CachedShift(module.shift_div, slots, count)
            count += 1
            return _CachedShiftConv2d(module, shift) if isinstance(module, ShiftedConv2d) else shift
        clone = copy.copy(module)
        clone._modules = {name: replace(child) for name, child in module._modules.items()}
        return clone

    return replace(backbone), count


class IncrementalStream:
    """Holds the state: step(frame (B, 3, H, W) preprocessed) -> logits (B, K)."""

    def __init__(self, model):
        self.step_module = StreamStep(model).eval()
        self.state = None

    @torch.no_grad()
    def step(self, frame):
        state = self.state or [None] * self.step_module.num_states  # None: zeros, as on the first frame
        logits, *self.state = self.step_module(frame, *state)
        return logits

    def state_bytes(self):
        return sum(s.numel() * s.element_size() for s in self.state or ())


def per_frame_logits(model, clip):
    """The offline model's logits of every frame before the segment average: clip (N, T, 3, H, W) ->
    (N, T, K). What an exact stream must reproduce."""
    n, t = clip.shape[:2]
    x = clip.reshape((n * t,) + clip.shape[2:])
    if model.mean is not None:
        x = (x.float() - model.mean) / model.std
    features = model.features(x)
    return model.head.fc(features.mean(dim=(2, 3))).view(n, t, -1)
