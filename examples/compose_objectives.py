"""Compose an objective stack in Python: text cross-entropy plus a custom objective,
mixed by learned uncertainty weighting, trained by Lightning.

    python examples/compose_objectives.py --steps 100

The custom objective, ``OptionLetterCE``, scores only the option letters at the first
response position (a 4-way classification), a sharper signal than full-vocabulary
cross-entropy for multiple-choice questions. It shows the whole objective protocol:
``setup`` reads token ids from the backbone, ``targets`` runs in the data workers,
``loss`` returns named terms. It ends by printing the train loss and the validation loss and
accuracy on ``--val-samples`` held-out questions.
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
import torch.nn.functional as F

from thinkspace.backbones import QwenVL
from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.mixers import UncertaintyWeighting
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import Objective, TextCrossEntropy


class OptionLetterCE(Objective):
    """Cross-entropy over the option letters' logits where the answer letter is predicted."""

    terms = {"ce": 1.0}

    def __init__(self, weight: float = 1.0, letters: str = "ABCD") -> None:
        super().__init__(weight)
        self.letters = letters

    def setup(self, backbone) -> None:
        self.letter_ids = backbone.tokenizer.convert_tokens_to_ids(list(self.letters))

    def targets(self, sample) -> torch.Tensor:
        return torch.tensor(self.letters.index(sample.answer))

    def loss(self, out, batch):
        rows = torch.arange(len(batch))
        hidden = out.hidden[rows, batch.prompt_lengths - 1]  # predicts the first response token
        logits = out.logits_at(hidden)[:, self.letter_ids]
        return {"ce": F.cross_entropy(logits.float(), batch.targets[self.name])}


def main(argv: list[str] | None = None) -> SpatialVLM:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--val-samples", type=int, default=64, help="held-out questions scored at the end")
    parser.add_argument("--run-dir", default="runs/compose_objectives")
    args = parser.parse_args(argv)

    L.seed_everything(0)
    model = SpatialVLM(
        backbone=QwenVL("tiny:qwen2_5_vl"),
        objectives={"text": TextCrossEntropy(), "letter": OptionLetterCE(weight=0.5)},
        mixer=UncertaintyWeighting(learn=["text.ce", "letter.ce"]),
        optimizer=lambda params: torch.optim.AdamW(params, lr=3e-4),
        generation={"max_new_tokens": 2, "do_sample": False},  # validation answers the question: accuracy
    )
    data = SpatialDataModule(train=ColouredSquares(1024, shuffle_options=False),
                             val=ColouredSquares(args.val_samples, shuffle_options=False, seed=1),
                             batch_size=args.batch_size)
    trainer = L.Trainer(max_steps=args.steps, accelerator="cpu", default_root_dir=args.run_dir,
                        use_distributed_sampler=False, enable_progress_bar=False, log_every_n_steps=10,
                        num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(model, data)
    train_loss = float(trainer.callback_metrics["train/loss"])
    trainer.limit_val_batches = 1.0  # score the held-out questions once, at the end
    (scores,) = trainer.validate(model, data, verbose=False)
    print(f"compose_objectives: {trainer.global_step} steps, train loss {train_loss:.3f}, "
          f"val loss {scores['val/loss']:.3f}, val accuracy {100 * scores['val/accuracy']:.1f}% "
          f"({args.val_samples} questions)")
    return model


if __name__ == "__main__":
    main()
