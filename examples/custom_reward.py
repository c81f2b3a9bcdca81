"""Add your own reward to GRPO: a plain function of prompts, completions and sample fields.

    python examples/custom_reward.py --steps 20

``brevity_reward`` prefers short answers to multiple-choice questions and does not apply
(``None``) to other questions. It is combined with the built-in answer reward, each
logged on its own (``train/rewards/brevity/mean``, ``.../std``, ``.../zero_spread``). It ends
by printing the loss, the answer accuracy of the last batch's completions and the brevity reward.
In a YAML config the same function is named by its dotted path::

    model:
      class_path: thinkspace.rl.SpatialGRPO
      init_args:
        rewards:
          answer: thinkspace.rl.rewards.answer_reward
          brevity: my_package.rewards.brevity_reward
        reward_weights: {answer: 1.0, brevity: 0.2}
        reward_kwargs: {brevity: {max_words: 4}}
"""

from __future__ import annotations

import argparse

import lightning as L
import torch

from thinkspace.answers import answer_text
from thinkspace.backbones import QwenVL
from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.rl import SpatialGRPO


def brevity_reward(prompts: list[str], completions: list[str], answer_type: list[str], max_words: int = 8,
                   **fields) -> list[float | None]:
    """1 for an empty answer down to 0 at ``max_words`` words or more; ``None`` unless multiple choice."""
    return [max(0.0, 1.0 - len(answer_text(c).split()) / max_words) if kind == "choice" else None
            for c, kind in zip(completions, answer_type)]


def main(argv: list[str] | None = None) -> SpatialGRPO:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--run-dir", default="runs/custom_reward")
    args = parser.parse_args(argv)

    L.seed_everything(0)
    model = SpatialGRPO(
        backbone=QwenVL("tiny:qwen2_5_vl"),
        rewards={"answer": "thinkspace.rl.rewards.answer_reward", "brevity": brevity_reward},
        reward_weights={"answer": 1.0, "brevity": 0.2},
        reward_kwargs={"brevity": {"max_words": 4}},
        group_size=args.group_size,
        max_new_tokens=8,
        beta=0.0,
        optimizer=lambda params: torch.optim.AdamW(params, lr=1e-4),
    )
    data = SpatialDataModule(train=ColouredSquares(256, shuffle_options=False), batch_size=args.batch_size)
    trainer = L.Trainer(max_steps=args.steps, accelerator="cpu", default_root_dir=args.run_dir,
                        use_distributed_sampler=False, enable_progress_bar=False, log_every_n_steps=1)
    trainer.fit(model, data)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    print(f"custom_reward: {trainer.global_step} steps, loss {metrics['train/loss']:.3f}, answer accuracy "
          f"{100 * metrics['train/rewards/answer/mean']:.1f}% (last batch), brevity reward "
          f"{metrics['train/rewards/brevity/mean']:.3f}")
    return model


if __name__ == "__main__":
    main()
