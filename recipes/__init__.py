"""recipes: what combines generation, scoring and training -- above `train` and `eval`.

- `recipes.sampling` -- verified training data from a model's samples or a teacher's
  traces (`assay data sample`): the task's own scorer, R1's filters, decontamination;
- `recipes.filters` -- those filters, one rule each, with its reason;
- `recipes.decontamination` -- word n-gram overlap with every offline benchmark's test items.

The layers: core <- rag, rewards <- tasks <- train, eval <- recipes <- assay (CLI, demo).
"""
