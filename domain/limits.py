"""The bounds of a run's options, wherever they are given: the project file's settings, the command
line, a service request. One place, so that what one refuses the others refuse too (a --concurrency
past 2**31 - 1 once journaled a plan no ordo could read back)."""

#: Operations at once (a plan holds at most 2**31 - 1).
MOST_AT_ONCE = 10_000
#: Re-plans one run may make.
MOST_REPLANS = 1000
#: Megabytes planning may be given (16 TB; more does not fit the system's limit).
MOST_MEMORY_MB = 1 << 24
#: ... and at least: under about 10 MB the solver cannot start its threads, and said only "Resource
#: temporarily unavailable" (a settings.memory_limit_mb of 5 passed ordo check).
LEAST_MEMORY_MB = 16
#: Seconds a time limit may be (a solver's, an operation's, a controller's): some 23 days, below the
#: longest one wait of the system's takes (2**31 ms: a command controller's timeout of 1e7 s, and a
#: solve_timeout of 1e308, were "a bug in ordo").
MOST_SECONDS = 2_000_000
#: Seconds an operation's time limit may be at least, where a run's options give one (``--op-timeout``,
#: a service request's ``op_timeout``).
LEAST_OP_SECONDS = 0.01
#: Seconds between a wait's observations at least (``wait.every``): a typo of 1e-6 polled the
#: controller back to back, as fast as it answered.
LEAST_POLL_SECONDS = 0.01
