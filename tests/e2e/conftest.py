"""Fixtures of the end-to-end tests: a real broker per test."""

import pytest

from e2e_harness import create_topics, start_tansu

@pytest.fixture
def bare_broker(tmp_path):
    """A broker with no topics."""
    proc, url = start_tansu(tmp_path)
    yield url.removeprefix("tcp://")
    proc.terminate()
    proc.wait(10)



@pytest.fixture
def broker(tmp_path):
    """A broker with chiprisk's topics."""
    proc, url = start_tansu(tmp_path)
    create_topics(url)
    yield url.removeprefix("tcp://")
    proc.terminate()
    proc.wait(10)
