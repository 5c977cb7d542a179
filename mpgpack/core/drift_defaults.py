"""Defaults shared by the drift monitor (core.drift), `mpgpack monitor` and `mpg-edge status`.

A module of its own, without numpy, so a command-line parser can show them cheaply.
"""
DEFAULT_WINDOW = 500      # rows of recent traffic compared with training
DEFAULT_MIN_COUNT = 100   # below this many rows a feature reports "not enough data"
