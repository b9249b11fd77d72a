"""Synthetic clips whose classes differ only in the order of their frames (the toy dataset's videos).

Each class is the time reversal of another: a shape moving left vs right, growing vs shrinking. Start
positions and sizes are drawn symmetrically, so the *set* of frames of a 'left' video is distributed
exactly like that of a 'right' video: a model that averages frames without temporal modelling cannot do
better than chance within a pair (50 %), while the temporal shift can learn the order.

A multi-label clip (render_pair) shows a square and a circle, each moving left or right on its own:
again only the frame order tells a label from its opposite. `tsm prepare toy` writes them as a dataset;
`tsm export` verifies on one when no video is given.
"""
import numpy as np

CLASSES = ["moving left", "moving right", "growing", "shrinking"]
MULTI_LABEL_CLASSES = ["square moving left", "square moving right", "circle moving left", "circle moving right"]


FRAMES = 17  # with 8 segments the test sampler takes frames 1, 3, ..., 15 of 17, a set that time reversal
# maps onto itself; of 16 frames it takes 1, 3, ..., 15, whose reversal is 0, 2, ..., 14: the sampled shape
# positions then differ between a class and its reversal, and a model without the shift learnt that


def render(label, rng, size=64, frames=FRAMES):
    """One clip (frames, size, size, 3) uint8 of class `label`."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    background = rng.integers(0, 90, size=3).astype(np.float32)
    texture = rng.normal(0, 6, size=(size, size, 1)).astype(np.float32)
    colour = rng.integers(140, 256, size=3).astype(np.float32)
    square = rng.random() < 0.5
    t = np.linspace(0.0, 1.0, frames, dtype=np.float32)
    if label in (0, 1):  # moving: the same path, walked one way or the other
        travel = size * 0.45
        start = rng.uniform(size * 0.25, size * 0.75) - travel / 2
        xs = start + travel * t
        xs = xs[::-1] if label == 0 else xs
        ys = np.full(frames, rng.uniform(size * 0.3, size * 0.7), dtype=np.float32)
        radii = np.full(frames, rng.uniform(size * 0.1, size * 0.16), dtype=np.float32)
    else:  # growing / shrinking: the same sizes, in one order or the other
        xs = np.full(frames, rng.uniform(size * 0.35, size * 0.65), dtype=np.float32)
        ys = np.full(frames, rng.uniform(size * 0.35, size * 0.65), dtype=np.float32)
        radii = rng.uniform(size * 0.05, size * 0.09) + rng.uniform(size * 0.15, size * 0.22) * t
        radii = radii[::-1] if label == 3 else radii
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for i in range(frames):
        dx, dy = np.abs(xx - xs[i]), np.abs(yy - ys[i])
        inside = np.maximum(dx, dy) <= radii[i] if square else dx ** 2 + dy ** 2 <= radii[i] ** 2
        img = background + texture
        img = np.where(inside[..., None], colour, img)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def render_pair(square_right, circle_right, rng, size=64, frames=FRAMES):
    """One multi-label clip: a square in the upper half and a circle in the lower half, each walking the
    same kind of path left or right."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img0 = rng.integers(0, 90, size=3).astype(np.float32) + rng.normal(0, 6, size=(size, size, 1)).astype(np.float32)
    t = np.linspace(0.0, 1.0, frames, dtype=np.float32)
    travel = size * 0.45
    paths = []
    for right, band in ((square_right, (0.22, 0.32)), (circle_right, (0.68, 0.78))):
        xs = rng.uniform(size * 0.25, size * 0.75) - travel / 2 + travel * t
        paths.append((xs if right else xs[::-1], rng.uniform(size * band[0], size * band[1]),
                      rng.uniform(size * 0.09, size * 0.13), rng.integers(140, 256, size=3).astype(np.float32)))
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for i in range(frames):
        img = img0.copy()
        for square, (xs, y, radius, colour) in zip((True, False), paths):
            dx, dy = np.abs(xx - xs[i]), np.abs(yy - y)
            inside = np.maximum(dx, dy) <= radius if square else dx ** 2 + dy ** 2 <= radius ** 2
            img = np.where(inside[..., None], colour, img)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out
