"""Starting and driving runs: the local runtime, the simulated organisation, schedules, the CLI."""
