"""assay: a RAG and evaluation platform with a verifiable reward harness.

The importable libraries are the other top-level packages, in layers: `core` (config,
files, model resolution, the user-error base), `rag` (retrieval), `rewards` (verifiers,
rewards and the output conventions), `tasks` (each task once), `train`
(SFT/DPO/GRPO/PPO/reward models), `eval` (benchmark suites) and `recipes` (verified data
from samples, multi-stage pipelines). This package holds only the application layer on
top of them: the `assay` command line and the end-to-end demo.
"""

from pathlib import Path

__version__ = "0.1.0"
REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout: bench/, data/, README.md
