"""Scenarios: user requests answered in at most two calls on the sandbox, over the real stdio process.

The table lives in ``tests/scenarios.py`` (the benchmark of what a model reads replays it too).
One server process serves every scenario, as one client session would.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scenarios import MAX_CALLS, SCENARIOS, Scenario, StdioSession


@pytest.fixture(scope="module")
def session() -> Iterator[StdioSession]:
    server = StdioSession()
    try:
        yield server
    finally:
        server.close()


def test_the_table_is_big_enough_and_every_path_is_short() -> None:
    assert len(SCENARIOS) >= 20
    assert len({sc.request for sc in SCENARIOS}) == len(SCENARIOS)
    for scenario in SCENARIOS:
        assert 1 <= len(scenario.steps) <= MAX_CALLS, scenario.request
        assert scenario.contains, scenario.request


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[sc.request for sc in SCENARIOS])
def test_scenario(session: StdioSession, scenario: Scenario) -> None:
    texts = []
    for index, step in enumerate(scenario.steps):
        text, failed = session.run(step)
        last = index == len(scenario.steps) - 1
        assert failed == (scenario.error and last), f"{step.name} {step.args}: {text}"
        texts.append(text)
    answer = "\n".join(texts)
    missing = [c for c in scenario.contains if c not in answer]
    wrong = [e for e in scenario.excludes if e in answer]
    assert not missing and not wrong, f"missing {missing}, unexpected {wrong} in:\n{answer}"
