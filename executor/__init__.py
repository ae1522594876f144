"""The executor: carries a plan out against controllers, durably.

``core`` makes the run loop's decisions (limits, retries, in doubt,
observation, re-planning) with no I/O of its own: inputs in, commands out;
``engine`` is its local host (worker threads, the journal, the controllers,
the guards, the planner); ``journal`` records every step before and after it
happens (in SQLite or PostgreSQL: the backends of ``store``), ``guards``
decides runtime guards just before each dispatch, and ``controllers`` holds
the adapters by kind. It depends on ``domain`` and ``planner`` only.
"""
