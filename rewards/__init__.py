"""rewards: verifiers and rewards — math answer checking, sandboxed code tests, format,
language consistency, length and repetition; composable and usable as TRL reward
functions.

Imports nothing else of assay and never imports torch.
"""
