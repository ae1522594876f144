"""The executor: carries a plan out against controllers (issue 3, not built yet).

It will depend on ``domain`` and ``planner`` only; nothing here yet.
"""
