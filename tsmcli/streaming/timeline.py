"""A label timeline of a long video: the model on consecutive windows of T frames (at the stream's
frame spacing), and the runs of windows with the same top-1 label merged into segments."""
from ..inference import Predictor
from . import Streamer, frames_of


def timeline(predictor, video, every=None, top=5, fps=None, threshold=0.5):
    """-> {"fps", "every", "windows": [{"start", "end", "top": [{"index", "label", "prob"}]}],
    "segments": [{"start", "end", "label", "index", "score"}]}; times in seconds, score = the label's mean
    probability over the segment's windows (predictor: an inference.Predictor, or a model, run as it is). A multi-label model's windows list the classes at or above
    `threshold`; its segments follow the most probable class."""
    if not isinstance(predictor, Predictor):
        predictor = Predictor(predictor)
    source_fps, frames = frames_of(video, fps, decoder=predictor.preset["data"]["decoder"])
    frames_per_window = predictor.num_segments
    streamer = Streamer(predictor, mode="window", every=every, top=top, window_every=frames_per_window, fps=source_fps,
                        threshold=threshold)
    span = (frames_per_window - 1) * streamer.every / source_fps  # first to last frame of a window
    windows = []
    for index, (time, frame) in enumerate(frames):
        result = streamer.feed(index, time, frame)
        if result is not None:
            windows.append({"start": round(max(0.0, result.time - span), 4),
                            "end": round(result.time + streamer.every / source_fps, 4),
                            "top": [{"index": i, "label": name, "prob": round(p, 6)} for i, name, p in result.top]})
            if streamer.multi_label:  # its top may be empty: segments follow the most probable class
                best = int(result.probs.argmax())
                windows[-1]["best"] = {"index": best, "label": streamer.labels[best],
                                       "prob": round(float(result.probs[best]), 6)}
    return {"fps": source_fps, "every": streamer.every, "windows": windows, "segments": merge(windows)}


def merge(windows):
    segments = []
    for window in windows:
        best = window.get("best") or window["top"][0]
        if segments and segments[-1]["index"] == best["index"]:
            segment = segments[-1]
            segment["end"] = window["end"]
            segment["probs"].append(best["prob"])
        else:
            segments.append({"start": window["start"], "end": window["end"], "label": best["label"],
                             "index": best["index"], "probs": [best["prob"]]})
    for segment in segments:
        probs = segment.pop("probs")
        segment["score"] = round(sum(probs) / len(probs), 6)
    return segments
