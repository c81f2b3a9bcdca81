"""What a command prints is what a user needs: none of the library lines issue 33 listed ("Seed set
to 0", loading bars, Lightning's checkpoint notices, "Total FLOPs: 0", decord's C++ "ERROR opening"),
and a run directory holds config.yaml, the TensorBoard events and checkpoints/last.ckpt only."""

from __future__ import annotations

import logging

import pytest
from cli_helpers import FAST, QUICKSTART, run_cli

from thinkspace.training.model_summary import summary_text
from thinkspace.training.noise import silence_known_noise

#: lines (or parts) that must not reach a user
NOISE = ("Seed set to", "Loading weights", "Writing model", "FLOPs", "litlogger", "past_key_values",
         "tie_word_embeddings", "ERROR opening", "Restoring states from the checkpoint",
         "Restored all states from the checkpoint", "Trainer already configured with model summary")


@pytest.mark.parametrize("logger, message, kept", [
    ("lightning.fabric.utilities.seed", "Seed set to 0", False),
    ("lightning.pytorch.utilities.rank_zero", "Restoring states from the checkpoint path at /r/last.ckpt", False),
    ("lightning.pytorch.utilities.rank_zero", "Restored all states from the checkpoint at /r/last.ckpt", False),
    ("lightning.pytorch.utilities.rank_zero", "Loaded model weights from the checkpoint at /r/last.ckpt", True),
    ("lightning.pytorch.utilities.rank_zero", "GPU available: False, used: False", True),
    ("lightning.pytorch.utilities.rank_zero", "💡 Tip: For seamless cloud logging, try installing [litlogger]", False),
])
def test_filters_drop_only_the_named_lines(logger, message, kept):
    silence_known_noise()
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, message, None, None)
    assert logging.getLogger(logger).filter(record) is kept


def test_quiet_trainer_drops_the_device_lines():
    silence_known_noise(quiet_trainer=True)
    record = logging.LogRecord("lightning.pytorch.utilities.rank_zero", logging.INFO, __file__, 1,
                               "GPU available: False, used: False", None, None)
    assert not logging.getLogger("lightning.pytorch.utilities.rank_zero").filter(record)
    silence_known_noise()


def test_model_summary_shows_flops_only_when_counted():
    columns = [(" ", ["0"]), ("Name", ["backbone"]), ("Type", ["QwenVL"]), ("Params", ["1.2 M"]),
               ("Mode", ["train"]), ("FLOPs", ["0"])]
    text = summary_text(columns, 1_200_000, 1_000_000, 4.7, {"train": 87, "eval": 0}, 0)
    assert text.splitlines()[0] == "  | Name     | Type   | Params | Mode "
    assert text.splitlines()[2] == "0 | backbone | QwenVL | 1.2 M  | train"
    assert "FLOPs" not in text and "1.0 M      Trainable params" in text and "200 K      Non-trainable params" in text
    counted = summary_text(columns[:-1] + [("FLOPs", ["5.0 K"])], 10, 10, 0.1, {"train": 1, "eval": 0}, 5000)
    assert "| FLOPs" in counted and counted.splitlines()[-1] == "5.0 K      Total FLOPs"


def test_undecodable_video_is_one_clean_error_without_decords_lines(tmp_path, capfd):
    from thinkspace.data.video import read_video

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match=rf"^video file {broken} cannot be decoded: Invalid data found when "
                                         "processing input$"):
        read_video(broken, 2)
    assert "ERROR opening" not in capfd.readouterr().err


@pytest.mark.slow  # two tiny fits, about 30 s on a loaded machine
def test_a_tiny_fit_and_its_resume_print_no_library_noise(tmp_path):
    args = ["fit", "--config", str(QUICKSTART), *FAST, "--trainer.enable_model_summary", "true",
            "--run_dir", "runs/quiet"]
    env = {"PYTHONWARNINGS": "default"}  # warnings shown, as a user sees them
    first = run_cli(*args, "--trainer.max_steps", "2", cwd=tmp_path, env=env)
    again = run_cli(*args, "--trainer.max_steps", "3", "--ckpt_path", "last", cwd=tmp_path, env=env)
    for proc in (first, again):
        printed = proc.stdout + proc.stderr
        assert [n for n in NOISE if n in printed] == [], printed
        assert "Trainable params" in printed  # the summary itself stays
    assert f"Resumed from {tmp_path / 'runs/quiet/checkpoints/last.ckpt'}: step 2" in again.stderr + again.stdout
    run = tmp_path / "runs" / "quiet"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith("events.out.tfevents")) == [
        "checkpoints", "config.yaml"]
