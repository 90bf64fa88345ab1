"""The run-folder contract: one folder per run, named ``<name>-<hash8>-s<seed>``, with its
files written atomically and its state in status.json (``runs``), the heartbeat and lock that
tell a live run from a dead one (``liveness``), and the environment recorded beside the
results (``environment``).
"""
