"""``train``: one run, one folder, a :class:`RunResult`; and the steps ``mnistexp train``
calls (:func:`run_config`, :func:`train_run`, :func:`skip_hint`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistexp.api.common import PathLike, check_paths
from mnistexp.core.errors import ConfigError

if TYPE_CHECKING:
    from mnistexp.config.loading import ExperimentConfig


@dataclass(frozen=True)
class RunResult:
    """What :func:`train` did: the fields of ``mnistexp train --json``.

    Attributes:
        run_dir: the run folder, ``<runs root>/<name>-<hash8>-s<seed>``.
        state: ``completed``, ``failed``, ``diverged``, ``interrupted``, or ``running`` when
            another live process owns the folder.
        skipped: True when a run already there was left as it was (no training).
        metrics: the run's ``metrics.json`` (sections ``test``, ``validation``, ``train``,
            ``test_temperature_scaled``, ...), or None when the run has none.
        message: why a run failed, diverged or was skipped, or how it was resumed.
        seconds: training time of this call (0 when skipped).
        elsewhere: the folder is that of the same experiment (config hash and seed) under
            another name, reused or retrained there rather than a second folder.
    """

    run_dir: Path
    state: str
    skipped: bool
    metrics: dict[str, Any] | None
    message: str | None
    seconds: float = 0.0
    elsewhere: bool = False

    @property
    def ok(self) -> bool:
        """True when the run is completed (trained now or before) or running elsewhere: the
        cases in which ``mnistexp train`` exits 0."""
        return self.state in ("completed", "running")

    @property
    def exit_code(self) -> int:
        """The exit code of ``mnistexp train`` for this result: 0 when :attr:`ok`, 130 when
        interrupted, 1 when failed or diverged."""
        from mnistexp.orchestration.experiment import Outcome

        return int(Outcome(self.run_dir, self.state).exit_code)


def train(
    config: PathLike | Mapping[str, Any] | None = None,
    *,
    overrides: Sequence[str] = (),
    runs_dir: PathLike | None = None,
    data_dir: PathLike | None = None,
    seed: int | None = None,
    force: bool = False,
    name: str | None = None,
    retry_failed: bool = False,
    resume: bool = False,
    progress: bool = False,
) -> RunResult:
    """Train one MLP and write its run folder, as ``mnistexp train`` does.

    A finished run is not retrained (``force=True`` retrains it); an interrupted one is.
    A run that fails or diverges is a result, not an exception: see ``state`` and
    ``message``. Ctrl-C (a notebook's interrupt) marks the run ``interrupted`` and raises
    KeyboardInterrupt.

    Args:
        config: a YAML file, a dict of settings (nested sections, ``{"train": {"lr": 0.05}}``,
            or dotted keys, ``{"train.lr": 0.05}``), or None for the defaults.
        overrides: ``key=value`` strings applied after ``config``, values as YAML, as
            ``--set`` takes them: ``["model.hidden=[256,128]"]``.
        runs_dir: the runs root (default: ``MNISTEXP_RUNS_DIR``, else ``./runs``).
        data_dir: the folder with the MNIST files (default: the config's ``data.dir``,
            ``MNISTEXP_DATA_DIR``, the cache).
        seed: shorthand for the override ``seed=N``.
        force: retrain even a completed run.
        name: shorthand for the override ``name=NAME`` (the run folder's name).
        retry_failed: retrain a run that failed or diverged.
        resume: continue an interrupted run from its last checkpoint
            (``train.checkpoint_every``) instead of starting over.
        progress: show a progress bar on stderr.

    Returns:
        The run folder, its state and its metrics.

    Raises:
        UsageError: bad input, with the CLI's one-line message (``ConfigError`` for the
            config, ``DataError`` for the MNIST files, ``RunError`` for the runs folder);
            nothing is written under the runs folder then.

    Example:
        ```python
        from mnistexp import train

        result = train("configs/baseline.yaml", overrides=["train.epochs=2"], seed=1)
        result.run_dir                        # runs/baseline-<hash8>-s1
        result.metrics["test"]["accuracy"]    # a fraction, e.g. 0.96
        ```
    """
    cfg = run_config(config, overrides, seed=seed, name=name, runs_dir=runs_dir, data_dir=data_dir)
    return train_run(
        cfg,
        runs_dir=runs_dir,
        data_dir=data_dir,
        force=force,
        retry_failed=retry_failed,
        resume=resume,
        progress=progress,
        argv=["mnistexp.api.train", *_describe(config), *overrides],
    )


# The steps of train and compare, for callers that show the work themselves (the command line
# calls them between its own checks and output); not part of the documented API (__all__).


def run_config(
    config: PathLike | Mapping[str, Any] | None,
    overrides: Sequence[str] = (),
    *,
    seed: int | None = None,
    name: str | None = None,
    runs_dir: PathLike | None = None,
    data_dir: PathLike | None = None,
) -> ExperimentConfig:
    """The validated config of one run, after :func:`check_paths`: ``config`` (a file, a dict
    or None), then ``overrides``, then ``seed`` and ``name`` (``--seed``, ``--name``)."""
    check_paths(runs_dir, data_dir)
    extra = [f"seed={seed}"] if seed is not None else []
    extra += [f"name={name}"] if name is not None else []
    return _load(config, [*overrides, *extra])


def train_run(
    cfg: ExperimentConfig,
    *,
    runs_dir: PathLike | None = None,
    data_dir: PathLike | None = None,
    force: bool = False,
    retry_failed: bool = False,
    resume: bool = False,
    progress: bool = False,
    argv: Sequence[str] = (),
) -> RunResult:
    """Train ``cfg`` into its run folder unless a finished run is there (the work of
    :func:`train`); ``argv`` is the command env.json records."""
    from mnistexp.orchestration.experiment import run_experiment
    from mnistexp.store.runs import run_name

    outcome = run_experiment(
        cfg,
        runs_dir=runs_dir,
        data_dir=data_dir,
        force=force,
        retry_failed=retry_failed,
        resume=resume,
        progress=progress,
        argv=list(argv),
    )
    elsewhere = outcome.run_dir.name != run_name(cfg)
    message = outcome.message
    if message is None and outcome.skipped:
        message = skip_hint(outcome.state, elsewhere)
    return RunResult(
        outcome.run_dir,
        outcome.state,
        outcome.skipped,
        outcome.metrics,
        message,
        outcome.seconds,
        elsewhere,
    )


def _load(config: PathLike | Mapping[str, Any] | None, overrides: Sequence[str]):
    """The validated config: a file read as ``--config`` reads it, or a dict applied as
    ``--set`` overrides of its top-level keys (so its messages are those of ``--set``)."""
    from mnistexp.config.loading import load_config

    if config is None or isinstance(config, str | Path):
        return load_config(config, overrides)
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"config must be a YAML file, a dict or None, not {type(config).__name__}"
        )
    settings = []
    for key, value in config.items():
        if not isinstance(key, str) or "=" in key:
            raise ConfigError(f"config key {key!r}: expected a key name such as 'train'")
        settings.append(f"{key}={json.dumps(value, default=str)}")  # JSON is YAML
    return load_config(None, [*settings, *overrides])


def _describe(config: PathLike | Mapping[str, Any] | None) -> list[str]:
    """The config part of the call as env.json records it (a dict's keys are in config.yaml)."""
    if config is None:
        return []
    return ["--config", str(config)] if isinstance(config, str | Path) else ["<dict>"]


ELSEWHERE = "the same experiment (config hash and seed) under another name"
ELSEWHERE_RETRAINED = f"retrained in the folder of {ELSEWHERE}"


def skip_hint(state: str, elsewhere: bool = False) -> str:
    """Why a run was left alone and how to retrain it, the text of ``mnistexp train``;
    ``elsewhere``: the folder is that of the same experiment under another name
    (:func:`mnistexp.store.runs.find_run`)."""
    from mnistexp.core.states import State

    if elsewhere and state == State.COMPLETED:
        return f"reused {ELSEWHERE}, already completed; not retrained (--force retrains it here)"
    if elsewhere and state == State.RUNNING:
        return f"{ELSEWHERE} is being trained by another process; left alone"
    hints: dict[str, str] = {
        State.COMPLETED: "already completed; not retrained (--force retrains)",
        State.RUNNING: "is being trained by another process; left alone",
    }
    return hints.get(state, f"{state} earlier; not retrained (--retry-failed retrains)")
