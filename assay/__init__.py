"""assay: a RAG and evaluation platform with a verifiable reward harness.

The importable libraries are the four top-level packages: `rag` (retrieval), `rewards`
(verifiers and rewards), `train` (SFT/DPO/GRPO/PPO/reward models) and `eval` (benchmark
suites). This package holds only the application layer on top of them: the `assay`
command line and the end-to-end demo.
"""

__version__ = "0.1.0"
