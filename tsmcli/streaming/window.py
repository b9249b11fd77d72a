"""Window mode, for any checkpoint (bidirectional shift, temporal pool, non-local blocks): the last T
preprocessed frames in a ring buffer, the whole model re-run on them every k steps. Its output is the
offline model's on that window, exactly."""
import torch


class WindowStream:
    def __init__(self, model, every=1):
        self.model, self.every = model, max(1, int(every))
        self.frames = model.num_segments
        self.buffer, self.steps = [], 0

    @torch.no_grad()
    def step(self, frame):
        """frame (B, 3, H, W) -> class logits (B, K) of the last T frames (the offline model's, before its
        softmax), or None while the buffer fills up and between re-runs."""
        self.buffer.append(frame)
        if len(self.buffer) > self.frames:
            self.buffer.pop(0)
        self.steps += 1
        if len(self.buffer) < self.frames or (self.steps - self.frames) % self.every:
            return None
        return self.model.logits(torch.stack(self.buffer, dim=1))[:, 0]
