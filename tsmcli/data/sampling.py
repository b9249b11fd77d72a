"""Which frames a clip is made of: TSN segment sampling and TSM's dense sampling.

Both return flat frame indices counted from 0 (the dataset adds the list's start index). In test mode
they equal mmaction2 0.x's SampleFrames / DenseSampleFrames exactly; in training mode they draw from
the same distributions, with an explicit numpy Generator so that a (seed, epoch, item) triple fixes
the draw whatever the number of loader workers.
"""
import numpy as np


class SampleFrames:
    """num_clips segments of clip_len frames frame_interval apart (TSM: clip_len=1, num_clips=T).

    Training: a random offset inside each of num_clips equal segments. Test: the segments' centres;
    twice_sample appends a second set at the segments' starts (the accurate scheme's 2 clips).
    Too short videos repeat frames; indices never leave [0, num_frames).
    """

    def __init__(self, num_clips, clip_len=1, frame_interval=1, test_mode=False, twice_sample=False,
                 temporal_jitter=False, out_of_bound_opt="loop"):
        self.num_clips, self.clip_len, self.frame_interval = num_clips, clip_len, frame_interval
        self.test_mode, self.twice_sample = test_mode, twice_sample
        self.temporal_jitter, self.out_of_bound_opt = temporal_jitter, out_of_bound_opt

    @property
    def views(self):
        return 2 if self.test_mode and self.twice_sample else 1

    def clip_offsets(self, num_frames, rng):
        span = self.clip_len * self.frame_interval
        if self.test_mode:
            avg = (num_frames - span + 1) / float(self.num_clips)
            if num_frames > span - 1:
                base = np.arange(self.num_clips) * avg
                offsets = (base + avg / 2.0).astype(np.int64)
                return np.concatenate([offsets, base]) if self.twice_sample else offsets
            return np.zeros(self.num_clips, dtype=np.int64)
        avg = (num_frames - span + 1) // self.num_clips
        if avg > 0:
            return np.arange(self.num_clips) * avg + rng.integers(avg, size=self.num_clips)
        if num_frames > max(self.num_clips, span):
            return np.sort(rng.integers(num_frames - span + 1, size=self.num_clips))
        if avg == 0:
            ratio = (num_frames - span + 1.0) / self.num_clips
            return np.around(np.arange(self.num_clips) * ratio)
        return np.zeros(self.num_clips, dtype=np.int64)

    def __call__(self, num_frames, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        offsets = self.clip_offsets(num_frames, rng)
        inds = offsets[:, None] + np.arange(self.clip_len)[None, :] * self.frame_interval
        if self.temporal_jitter:
            inds = inds + rng.integers(self.frame_interval, size=inds.shape)
        if self.out_of_bound_opt == "loop":
            inds = np.mod(inds, num_frames)
        else:  # repeat_last: past the end, repeat each clip's last valid frame
            valid = inds < num_frames
            last = np.max(valid * inds, axis=1, keepdims=True)
            inds = np.where(valid, inds, last)
        return inds.reshape(-1).astype(np.int64)


class DenseSampleFrames(SampleFrames):
    """TSM's dense sampling: num_clips frames sample_range // num_clips apart from one start.

    Training: one random start. Test: num_sample_positions evenly spaced starts (10 views), the first at
    frame 0 and the last at the end as in mmaction2; `centred` puts each start in the middle of its share
    of the video instead (a single view then covers the video's centre, not its first frames).
    """

    def __init__(self, num_clips, clip_len=1, frame_interval=1, test_mode=False, twice_sample=False,
                 temporal_jitter=False, out_of_bound_opt="loop", sample_range=64, num_sample_positions=10,
                 centred=False):
        super().__init__(num_clips, clip_len, frame_interval, test_mode, twice_sample, temporal_jitter,
                         out_of_bound_opt)
        self.sample_range, self.num_sample_positions = sample_range, num_sample_positions
        self.centred = centred

    @property
    def views(self):
        return self.num_sample_positions if self.test_mode else 1

    def clip_offsets(self, num_frames, rng):
        positions = max(1, 1 + num_frames - self.sample_range)
        base = np.arange(self.num_clips) * (self.sample_range // self.num_clips)
        if self.test_mode:
            if self.centred:
                starts = ((np.arange(self.num_sample_positions) + 0.5) * positions
                          / self.num_sample_positions).astype(int)
            else:
                starts = np.linspace(0, positions - 1, num=self.num_sample_positions, dtype=int)
            return np.concatenate([(base + start) % num_frames for start in starts])
        start = 0 if positions == 1 else rng.integers(0, positions - 1)
        return (base + start) % num_frames


SAMPLERS = {"SampleFrames": SampleFrames, "DenseSampleFrames": DenseSampleFrames}
