"""The run plumbing around the training loop: learning-rate schedules and weight-decay groups,
exact resume, progress bars, throughput, strategies (FSDP2 sharding and its groups) and
collectives, the precision of the weights the optimizer updates, CPU threads, checkpoint files and
the run's last line. Nothing here knows a paper; the modules and the CLI use it."""
