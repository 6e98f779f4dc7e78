"""train: SFT, DPO, GRPO (on TRL), PPO and reward-model training, LoRA,
retrieval-grounded prompts and search-in-the-loop rollouts. Builds on `rag` and `rewards`.
"""
