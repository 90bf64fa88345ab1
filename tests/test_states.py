"""Run states and exit codes are enums that read exactly as the strings and numbers they were:
status.json, ``--json`` summaries, messages and exit statuses must not change by a byte."""

from __future__ import annotations

import json
import pickle

import pytest

from mnistexp.core.errors import ExitCode, Terminated, interrupt_exit_code
from mnistexp.core.states import State
from mnistexp.store import runs


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_a_state_reads_as_its_value(state: State) -> None:
    value = state.value
    assert (str(state), f"{state}", format(state), "%s" % state) == (value,) * 4  # noqa: UP031
    assert f"{state:>12}" == f"{value:>12}"
    assert json.dumps({"state": state}) == json.dumps({"state": value})
    assert state == value and hash(state) == hash(value)
    assert {value: 1}[state] == 1 and {state: 1}[value] == 1  # plain strings from disk look up
    assert pickle.loads(pickle.dumps(state)) is state  # outcomes cross worker processes


def test_the_state_tuples_derive_from_the_enum() -> None:
    assert runs.STATES == ("running", "completed", "failed", "diverged", "interrupted")
    assert runs.FINISHED_BAD == ("failed", "diverged", "interrupted")
    assert runs.RESUMABLE == ("interrupted", "failed")


def test_exit_codes_are_the_shell_numbers() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 130, 143]
    assert (str(ExitCode.SIGINT), f"{ExitCode.SIGTERM}") == ("130", "143")
    assert interrupt_exit_code(KeyboardInterrupt()) == 130
    assert interrupt_exit_code(Terminated()) == 143
