"""Frame sampling with decord: the frames, indices and timestamps it claims."""

import av
import numpy as np
import pytest

from thinkspace.data.video import read_video, uniform_indices


def write_video(path, num_frames, fps=10, size=(32, 64)):
    """A video whose frame i is filled with grey level 10 * i (so frames identify themselves)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "1"}
        for i in range(num_frames):
            image = np.full((*size, 3), 10 * i, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_uniform_indices_are_segment_centres():
    assert uniform_indices(20, 4) == [2, 7, 12, 17]
    assert uniform_indices(5, 5) == [0, 1, 2, 3, 4]
    assert uniform_indices(7, 1) == [3]
    with pytest.raises(ValueError, match="requested 9 frames from a video of 8"):
        uniform_indices(8, 9)


def test_read_video_returns_the_frames_it_claims(tmp_path):
    path = tmp_path / "walk.mp4"
    write_video(path, 20, fps=10)
    clip = read_video(path, 4)
    assert clip.total_frames == 20 and clip.indices == [2, 7, 12, 17]
    assert clip.frames.shape == (4, 32, 64, 3) and clip.frames.dtype == np.uint8
    grey = clip.frames.reshape(4, -1).mean(1)
    assert np.allclose(grey, [20, 70, 120, 170], atol=4)
    assert clip.fps == pytest.approx(10.0)
    assert clip.timestamps.tolist() == pytest.approx([0.2, 0.7, 1.2, 1.7])


def test_too_few_frames_and_broken_files_are_named(tmp_path):
    path = tmp_path / "short.mp4"
    write_video(path, 3)
    with pytest.raises(ValueError, match=rf"video file {path} has 3 frames, fewer than the 8 requested"):
        read_video(path, 8)
    assert read_video(path, 8, allow_fewer=True).indices == [0, 1, 2]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match=rf"video file {broken} cannot be decoded"):
        read_video(broken, 2)
    with pytest.raises(FileNotFoundError, match="missing.mp4 not found"):
        read_video(tmp_path / "missing.mp4", 2)
