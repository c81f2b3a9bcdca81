"""Every subcommand fails on bad input the same way: one line naming the place, exit code 2."""

import pickle

import numpy as np
import pytest
import torch

from thinkspace.training.checkpoint_file import read_checkpoint
from thinkspace.cli import COMMANDS, TOOLS, main
from thinkspace.errors import one_line, run_reporting_errors

from cli_helpers import QUICKSTART, one_error_line


def error_line(capsys) -> str:
    """The error line: the last of stderr (model loading may print progress before it), no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def test_help_lists_every_subcommand_with_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("fit", "validate", "test", "predict", *TOOLS):
        (line,) = [line for line in out.splitlines() if line.split()[:1] == [name]]
        assert len(line.split()) > 3, line
    assert set(COMMANDS) == {"fit", "validate", "test", "predict", *TOOLS}


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_every_tool_module_has_its_main(name, capsys):
    assert main([name, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: thinkspace {name}")


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_a_bad_tool_argument_is_one_line_through_errors_py(name, capsys):
    """argparse's complaint (a missing or unknown argument) as one line, exit code 2, no usage text."""
    assert main([name, "--no-such-option"]) == 2
    line = one_error_line(capsys, name)
    assert "--no-such-option" in line or "the following arguments are required" in line, line


def test_unknown_command_lists_every_subcommand(capsys):
    assert main(["trian", "--config", "x.yaml"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "thinkspace: error: unknown command 'trian'; expected one of:"
    assert [line.split()[0] for line in err[1:]] == list(COMMANDS)


def test_bad_input_is_one_line_and_exit_2_and_debug_keeps_the_traceback(capsys):
    def broken(argv):
        raise FileNotFoundError(f"config {argv[0]} not found")

    assert run_reporting_errors("points", broken, ["cfg.yaml"]) == 2
    assert error_line(capsys) == "thinkspace points: error: config cfg.yaml not found"
    with pytest.raises(FileNotFoundError, match="config cfg.yaml not found"):
        run_reporting_errors("points", broken, ["cfg.yaml", "--debug"])


def test_genuine_bugs_keep_their_traceback():
    def bug(argv):
        raise TypeError("unsupported operand")

    with pytest.raises(TypeError):
        run_reporting_errors("ask", bug, [])


def test_a_worker_error_is_reported_by_its_last_line():
    error = FileNotFoundError("Caught FileNotFoundError in DataLoader worker process 0.\nOriginal Traceback "
                              "(most recent call last):\n  File \"x.py\", line 3\nFileNotFoundError: image file a.png "
                              "not found (sample 'q1')")
    assert one_line(error) == "image file a.png not found (sample 'q1')"
    assert one_line(KeyError("sample 'q1' is not in the teacher cache")) == "sample 'q1' is not in the teacher cache"


@pytest.mark.parametrize("content, reason", [
    (b"", "is an empty file; expected a torch checkpoint"),
    (b"garbage, not a checkpoint at all", "cannot be read as a torch checkpoint"),
    (pickle.dumps({"a": 1})[:5], "cannot be read as a torch checkpoint"),
    ("truncated", r"is truncated \(a zip archive of 300 bytes without its end"),
])
def test_a_broken_checkpoint_is_named(tmp_path, content, reason):
    path = tmp_path / "last.ckpt"
    if content == "truncated":
        torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
        content = path.read_bytes()[:300]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"checkpoint {path} {reason}"):
        read_checkpoint(path)


def test_export_of_a_garbage_checkpoint_is_one_line(tmp_path, capsys):
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"\x80\x04garbage")
    code = main(["export", "--ckpt", str(ckpt), "--config", str(QUICKSTART), "--out", str(tmp_path / "model")])
    assert code == 2
    line = error_line(capsys)
    assert line.startswith(f"thinkspace export: error: checkpoint {ckpt} cannot be read as a torch checkpoint")
    assert not (tmp_path / "model").exists()


def test_non_utf8_predictions_name_the_file_and_line(tmp_path, capsys):
    path = tmp_path / "preds.jsonl"
    path.write_bytes(b'{"id": "a", "answer": "A"}\n{"id": "b", "answer": "\xff\xfe"}\n')
    assert main(["score", "mindcube", str(path)]) == 2
    assert error_line(capsys) == (f"thinkspace score: error: {path}:2: not UTF-8 text (byte 0xff at column 24); "
                                  "expected UTF-8 JSON lines")


def test_ask_checks_the_images_before_loading_the_model(tmp_path, capsys):
    missing = tmp_path / "nowhere.png"
    code = main(["ask", "--model", str(tmp_path / "no-model"), "--images", str(missing), "--question", "Left?"])
    assert code == 2
    assert error_line(capsys) == f"thinkspace ask: error: image file {missing} not found"


def write_walk(path, frames=6):
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.height, stream.width, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 30 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_video_means_video_whatever_the_extension(tmp_path, capsys):
    from thinkspace.inference.inputs import question_sample

    walk = tmp_path / "walk.mpg"
    write_walk(walk)
    sample = question_sample(walk, "How many chairs?", num_frames=4, video=True)
    assert sample.frames.shape == (4, 32, 32, 3) and sample.timestamps is not None
    with pytest.raises(ValueError, match="cannot be decoded as an image"):
        question_sample(walk, "How many chairs?", num_frames=4)  # by extension: an image
    # the CLI's --video reads it as a video, then fails only on the (missing) model
    code = main(["ask", "--model", str(tmp_path / "no-model"), "--video", str(walk), "--question", "How many?",
                 "--num-frames", "4"])
    assert code == 2
    line = error_line(capsys)
    assert "no-model" in line and "walk.mpg" not in line


@pytest.mark.parametrize("args, message", [
    (["--trainer.precision", "17"], 'Parser key "trainer.precision": Expected a typing.Literal[64, 32, 16]; '),
    (["--model.objectives.text", '{"class_path": "thinkspace.objectives.Nope"}'],
     "Parser key \"model.objectives\": Problem with given class_path 'thinkspace.objectives.Nope': module "
     "'thinkspace.objectives' has no attribute 'Nope'"),
])
def test_a_bad_fit_argument_is_one_line_not_the_usage(args, message, capsys):
    assert main(["fit", "--config", str(QUICKSTART), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"thinkspace fit: error: {message}"), err


def test_ctrl_c_outside_a_training_step_is_one_line_and_exit_130(capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    assert run_reporting_errors("fit", interrupted, []) == 130
    assert capsys.readouterr().err == "thinkspace fit: interrupted (Ctrl-C)\n"
    with pytest.raises(KeyboardInterrupt):
        run_reporting_errors("fit", interrupted, ["--debug"])
