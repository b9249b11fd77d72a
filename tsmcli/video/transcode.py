"""Resizing a video into a new H.264 file (`tsm prepare --resize-videos`): decoded and scaled in YUV by
FFmpeg (no round trip through RGB), re-encoded with a keyframe every `gop` frames."""
from .reader import MediaError, first_line
from .writer import VideoWriter


def resize_video(source, target, size_of, gop=16, crf=18):
    """source -> target at size_of(height, width) -> (new_height, new_width); returns the frame count.
    The target appears only when complete; MediaError when the source cannot be decoded."""
    import av
    from av.video.reformatter import VideoReformatter

    try:
        container = av.open(source)
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(source, f"cannot open video ({first_line(e)})") from None
    with container:
        if not container.streams.video:
            raise MediaError(source, "no video stream")
        stream = container.streams.video[0]
        height, width = size_of(stream.codec_context.height, stream.codec_context.width)
        video = VideoWriter(target, stream.average_rate or 30, crf=crf, gop=gop)
        scaler = VideoReformatter()  # not frame.reformat's: see VideoWriter.write
        try:
            for frame in container.decode(stream):
                video.write(scaler.reformat(frame, width=width, height=height, format="yuv420p"))
        except av.error.FFmpegError as e:
            video.close(keep=False)
            raise MediaError(source, f"decoding stopped at frame {video.frames} ({first_line(e)})") from None
        if video.frames == 0:
            video.close(keep=False)
            raise MediaError(source, "no frames")
        video.close()
        return video.frames
