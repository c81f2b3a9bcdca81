"""A folder given where a file is expected is named as a folder, not "not found"; exit code 2."""

from __future__ import annotations

import pytest

from thinkspace.cli import main
from thinkspace.data.images import load_image
from thinkspace.data.video import read_video


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


def test_video_folder_is_named_a_folder(tmp_path, capsys):
    folder = tmp_path / "walks"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"^video file {folder} is a folder; expected a video file"):
        read_video(folder, 4)
    code = main(["ask", "--model", str(tmp_path / "no-model"), "--video", str(folder), "--question", "How many?"])
    assert code == 2
    assert error_line(capsys) == (f"thinkspace ask: error: video file {folder} is a folder; "
                                  "expected a video file (.mp4, .avi, .mkv, ...)")


def test_image_folder_is_named_a_folder(tmp_path, capsys):
    with pytest.raises(IsADirectoryError, match=rf"^image file {tmp_path} \(sample 'q1'\) is a folder; expected"):
        load_image(tmp_path, "q1")
    code = main(["ask", "--model", str(tmp_path / "no-model"), "--images", str(tmp_path), "--question", "Left?"])
    assert code == 2
    assert error_line(capsys) == (f"thinkspace ask: error: image file {tmp_path} is a folder; "
                                  "expected an image file (.png, .jpg, ...)")
