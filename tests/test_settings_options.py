"""--precision and --set (cdsl sim/verify): parsed into {layer: {setting: value}}, bad items refused with
one line naming the option, never a traceback (the design checks names and ranges)."""

from __future__ import annotations

import argparse

import pytest

from cdsl.errors import CdslError
from cdsl.flow import parse_settings


def _args(precision=(), settings=()):
    return argparse.Namespace(precision=list(precision), settings=list(settings))


def test_settings_parse():
    assert parse_settings(_args(["h1=4"], ["e1.threshold=144", "h2.T=0"])) == {
        "h1": {"precision": 4}, "e1": {"threshold": 144}, "h2": {"T": 0}}
    # signed values reach the design's range check, which names the setting and its range
    assert parse_settings(_args(settings=["e1.threshold=-1", "e2.threshold=+7"])) == {
        "e1": {"threshold": -1}, "e2": {"threshold": 7}}


@pytest.mark.parametrize("precision, settings, words", [
    ((), ["e1.threshold=\u00b2"], "--set 'e1.threshold=\u00b2': expected LAYER.SETTING=VALUE with a whole number"),
    ((), ["e1.threshold=\u0663"], "--set 'e1.threshold=\u0663': expected"),  # a non-ASCII digit
    ((), ["e1.threshold=1.5"], "expected LAYER.SETTING=VALUE"),
    ((), ["e1.threshold= 5"], "expected LAYER.SETTING=VALUE"),
    (["h1=\u00b9"], (), "--precision 'h1=\u00b9': expected LAYER=BITS"),
    ((), ["e1.threshold=100", "e1.threshold=120"], "--set 'e1.threshold=120': e1.threshold is already set by --set e1.threshold=100"),
    (["h1=4"], ["h1.precision=6"], "--set 'h1.precision=6': h1.precision is already set by --precision h1=4"),
])
def test_bad_settings_are_one_line(precision, settings, words):
    """'²' passed str.isdigit() and crashed int() with a traceback; a setting given twice silently took
    the last value."""
    with pytest.raises(CdslError) as info:
        parse_settings(_args(precision, settings))
    assert info.value.exit_code == 2
    assert words in str(info.value) and "\n" not in str(info.value), str(info.value)
