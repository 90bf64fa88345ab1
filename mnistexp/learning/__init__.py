"""The math of learning, on whole batches: output units (``outputs``), losses (``losses``),
target schemes (``targets``), the objective that joins them (``objective``), the MLP and its
backward pass (``model``), optimisers and schedules (``optim``), the training state a checkpoint
holds (``checkpoints``) and the memory budget of a configuration (``budget``).
"""
