"""The verify suite: ``pytest verify/`` proves each migrated guest works (see README)."""
