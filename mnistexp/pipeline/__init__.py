"""One experiment in memory, from a validated config and a loaded dataset: the train,
validation and test splits with their targets (``splits``), the training loop (``trainer``)
and the evaluation of the trained model on every split with every recalibration map
(``evaluation``). Nothing here writes files; the run folder is ``mnistexp.store``'s.
"""
