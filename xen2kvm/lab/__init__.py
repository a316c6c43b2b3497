"""The lab: a real Xen-to-KVM fleet on one machine, for tests and demos.

Lab glue, never imported by production code paths (``operations/``, ``facts/``,
``deploy.py``). See ``lab/README.md`` for what runs where.
"""
