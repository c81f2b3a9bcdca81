"""Training plumbing: sharded data parallelism (FSDP2) and the precision of the weights the
optimizer updates."""
