"""mnistexp: which target encoding, loss and input scaling should an MNIST MLP use?

The package is layered (README "Architecture"; the layers contract in pyproject.toml is checked
by ``lint-imports``), each layer importing only those below it:

    cli                      the Click commands
    analysis | orchestration reading and comparing runs | running experiments and sweeps
    store                    the run-folder contract
    pipeline                 one experiment in memory: splits, training loop, evaluation
    config                   configs, their identity, the registries
    eval                     metrics, calibration, recalibration, bootstrap
    learning | data          outputs, losses, targets, model, optimisers | IDX files, datasets
    core                     errors, bounded reads, atomic writes, paths, YAML, schema, states

Importing the package is cheap: numpy and friends are imported by the modules that need them,
never here. Old flat import paths (``mnistexp.metrics``) still work for one release, with a
DeprecationWarning (:mod:`mnistexp._moved`).
"""

from mnistexp import _moved

__version__ = "0.1.0"

_moved.install()
