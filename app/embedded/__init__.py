"""Servers that `make run` (and the tests) start as child processes when nothing else is configured:
storage, the queue, the virus scanner. Each module starts one and returns an `EmbeddedProcess`."""
