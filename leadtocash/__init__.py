"""The composition root: the only package that imports the platform, both mocks, the bridge and the scenarios.

It owns the `sandbox` command, the one served stack, child processes, the scenario runner and demo, bench,
load and the pytest plugin.
"""
