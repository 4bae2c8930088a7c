"""Fixtures for every test of the project: trioweb's pytest plugin serves the ``app`` fixture."""

import pytest
from notes import app as notes_app

from trioweb import TrioWeb


@pytest.fixture
def app() -> TrioWeb:
    """The app under test, for the plugin's ``client`` and ``live_server`` fixtures."""
    return notes_app
