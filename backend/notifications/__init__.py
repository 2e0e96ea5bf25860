"""Sending what the outbox holds: SMS senders and the delivery loop."""
