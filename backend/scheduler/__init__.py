"""The one scheduler: deadlines enforced and SMS sent, by exactly one process at a time."""
