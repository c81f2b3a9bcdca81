"""A GRPO reward that differs between completions, so a random tiny policy gets non-zero advantages
(its format, answer and latent rewards are equal within a group: nothing would be learnt)."""


def varied_reward(prompts: list[str], completions: list[str], **fields) -> list[float]:
    """A fixed function of each completion's characters, in [0, 1]."""
    return [sum(map(ord, c)) % 5 / 4 for c in completions]
