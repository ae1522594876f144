"""ordo as a service: HTTP APIs over the planner and executor."""
