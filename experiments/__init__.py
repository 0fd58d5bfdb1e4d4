"""Registered experiments: every module here registers named configs with `nlpdl.config.register`."""
