"""Running experiments: one run from config to finished folder, resumed or reused
(``experiment``), a sweep's grids, zips and seeds expanded into configs and emitted as commands
(``sweep``), the local worker pool (``workers``), and the plan of what a command would train
(``planning``).
"""
