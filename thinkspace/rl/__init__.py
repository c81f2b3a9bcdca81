"""Reinforcement learning on the Lightning loop: GRPO (3DThinker's stage 2), rewards, rollouts."""

from thinkspace.rl.grpo import SpatialGRPO
from thinkspace.rl.rewards import RewardSet, answer_reward, format_reward, latent3d_reward

__all__ = ["RewardSet", "SpatialGRPO", "answer_reward", "format_reward", "latent3d_reward"]
