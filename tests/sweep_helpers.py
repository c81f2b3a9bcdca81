"""The fake trainer of the sweep tests: a small script taking thinkspace's arguments.

It records each call, crashes for ``lr 0.5``, is killed (SIGKILL) after writing its first
checkpoint for ``batch_size 3``, and otherwise writes ``val/accuracy = lr + seed / 10``. As a test
stage it answers 40 questions ``q00``..``q39`` (the file ``QuestionsFile`` would write): the even
ones right, and with ``lr >= 0.2`` also every other odd one (``q01``, ``q05``, ...); its
``test/accuracy`` is their mean.
"""

import json

from cli_helpers import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")

FAKE = r'''
import json, os, signal, sys
from pathlib import Path
argv = sys.argv[1:]
value = lambda flag: argv[argv.index(flag) + 1] if flag in argv else None
run_dir = Path(value("--run_dir"))
with open(run_dir.parent / "calls.txt", "a") as f:
    f.write(json.dumps({"run": run_dir.name, "ckpt": value("--ckpt_path")}) + "\n")
if value("--model.optimizer.init_args.lr") == "0.5":
    sys.exit("fake trainer: lr 0.5 diverged")  # a crash, exit 1
ckpt = run_dir / "checkpoints" / "last.ckpt"
if value("--data.batch_size") == "3" and not ckpt.exists():
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)  # killed midway, after its first checkpoint
callbacks = [json.loads(argv[i + 1])["init_args"]["path"] for i, a in enumerate(argv) if a == "--trainer.callbacks+"]
metrics = callbacks[0]
seed = int(value("--seed_everything") or 0)
lr = float(value("--model.optimizer.init_args.lr"))
if argv[0] == "test":
    right = [i % 2 == 0 or (lr >= 0.2 and i % 4 == 1) for i in range(40)]
    rows = "".join(f"q{i:02d},{int(r)},A,{'A' if r else 'B'}\n" for i, r in enumerate(right))
    open(callbacks[1], "w").write("id,correct,answer,prediction\n" + rows)
    json.dump({"stage": "test", "global_step": 5, "metrics": {"test/accuracy": sum(right) / 40}}, open(metrics, "w"))
    sys.exit(0)
json.dump({"stage": "fit", "global_step": 5, "metrics": {"val/accuracy": lr + seed / 10, "train/loss": 1.0}},
          open(metrics, "w"))
'''


def calls(out):
    return [json.loads(line) for line in (out / "calls.txt").read_text().splitlines()]
