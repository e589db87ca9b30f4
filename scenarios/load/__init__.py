"""Locust load tests of the sandbox (run them with ``sandbox load``; see ``locustfile.py``)."""
