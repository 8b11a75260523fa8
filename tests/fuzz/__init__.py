"""Fuzzing: hostile mail, corpus mutations and webhook bodies through the real service (see targets.py)."""
