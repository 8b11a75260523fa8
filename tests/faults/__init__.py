"""Fault injection: the real flow killed at product checkpoints (bot.faults) and run through outages."""
