"""The small shared core below every other package of assay.

What more than one package needs and none of them owns: the user-error base class
(`core.errors`), config files mapped onto dataclasses with "did you mean" errors
(`core.config`), files (atomic writes and directories, JSON Lines with file:line errors,
where the shared data sets are, named fault points for crash tests: `core.files`), and
model resolution with device and dtype choice (`core.models`).

Layers: ``core <- {rag, rewards} <- tasks <- {train, eval} <- assay`` (the CLI and demo).
`core.errors`, `core.config` and `core.files` use only the standard library, so
`rewards` can import them and still never import torch; `core.models` imports torch and
transformers lazily, inside the functions that need them.
"""
