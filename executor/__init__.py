"""The executor: carries a plan out against controllers, durably.

``engine`` runs the plan (limits, retries, observation, re-planning),
``journal`` records every step before and after it happens, ``guards``
decides runtime guards just before each dispatch, and ``controllers`` holds
the adapters by kind. It depends on ``domain`` and ``planner`` only.
"""
