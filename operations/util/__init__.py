"""Helpers shared by the operation modules (as pyinfra keeps ``operations/util/``)."""
