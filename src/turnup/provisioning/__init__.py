"""Provisioning: adapter plugins (entry points ``turnup.provisioning_adapters``), the network simulator,
the order workflow and its steps, and the fallout queue."""
