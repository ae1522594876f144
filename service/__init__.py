"""``ordo serve``: orchestration requests over HTTP, on the planner and executor the CLI uses.

Beside the command line, on top: it only translates HTTP into calls of the library
(``executor/runs.py`` through ``service/engine.py``) and answers back. See docs/service.md.
"""
