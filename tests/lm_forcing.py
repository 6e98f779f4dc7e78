"""Making a tiny random model write given tokens first, as a trained one would: the tests of
search in the loop force a ``<search>`` call this way, and everything downstream
(generation, stopping, retrieval, pasting, masking) is the real thing."""

from __future__ import annotations

import torch


def forcing_processor(token_ids: list[int]):
    """Makes the (random, tiny) policy write `token_ids` first, as a trained one would:
    generation, stopping, retrieval and masking downstream are all the real thing."""
    from transformers import LogitsProcessor

    class ForceFirst(LogitsProcessor):
        def __init__(self):
            self.start = None
            self.finished = False

        def __call__(self, input_ids, scores):
            if self.finished:
                return scores
            if self.start is None:
                self.start = input_ids.shape[1]
            pos = input_ids.shape[1] - self.start
            if pos >= len(token_ids):
                self.finished = True
                return scores
            forced = torch.full_like(scores, float("-inf"))
            forced[:, token_ids[pos]] = 0.0
            return forced

    return ForceFirst()
