"""The docstrings' examples run as written."""

from __future__ import annotations

import doctest

import purple_rain
import purple_rain.bus


def test_docstring_examples() -> None:
    for module in (purple_rain, purple_rain.bus):
        failed, tried = doctest.testmod(module)
        assert tried > 0 and failed == 0, module.__name__
