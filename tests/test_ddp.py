"""Real DDP on the CPU (two processes, gloo): the split of the data and the files a run leaves."""

import os
from pathlib import Path

import pytest
import torch

from cli_helpers import FAST, QUICKSTART, run_cli

pytestmark = pytest.mark.slow


def test_two_process_ddp_sees_every_sample_once_per_epoch(tmp_path):
    config = tmp_path / "probe.yaml"
    config.write_text(
        "trainer:\n  callbacks:\n    - class_path: ddp_probe.RecordIds\n"
        f"      init_args:\n        out_dir: {tmp_path / 'ids'}\n"
    )
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    # 40 samples, 2 ranks, batch 4: 5 steps per epoch; 10 steps = 2 epochs
    run_cli("fit", "--config", str(QUICKSTART), "--config", str(config), "--run_dir", "runs/ddp",
            "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.max_steps", "10", *FAST, cwd=tmp_path,
            env={"PYTHONPATH": path})
    lines = {r: (tmp_path / "ids" / f"rank{r}.txt").read_text().split("\n")[:-1] for r in (0, 1)}
    assert [len(v) for v in lines.values()] == [10, 10]
    for epoch in (0, 1):
        seen = [i for r in (0, 1) for line in lines[r] if line.startswith(f"{epoch} ") for i in line.split()[1:]]
        assert len(seen) == 40 and len(set(seen)) == 40, f"epoch {epoch}: every sample exactly once across ranks"
    first = [line.split()[1:] for line in lines[0] if line.startswith("0 ")]
    second = [line.split()[1:] for line in lines[0] if line.startswith("1 ")]
    assert first != second  # a new order each epoch
    ckpt = torch.load(tmp_path / "runs/ddp/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 10
    assert sorted(p.name for p in (tmp_path / "runs/ddp").iterdir() if p.suffix == ".yaml") == [
        "config.yaml", "hparams.yaml"]
