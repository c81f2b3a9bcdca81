"""Small helpers every layer may use: atomic file writes with the user's umask, one seed mixer,
one check of a setting against its ``Literal`` choices, and lazy package exports."""
