"""What a run may be asked to do when an operation fails for good: the core's choices
(``RunCore(on_failure=...)``), named once for every place that takes one (the command line, the
service, a run's stored options, a Temporal workflow's input)."""

#: Plan again from what is observed, roll back what the run did, or stop where it is.
ON_FAILURE = ("replan", "rollback", "stop")
