"""The ``synthroom`` command line."""
