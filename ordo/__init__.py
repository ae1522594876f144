"""The ordo command line: a thin layer over domain, planner and executor."""

__version__ = "0.1.0"
