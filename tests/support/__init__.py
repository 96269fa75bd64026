"""Helpers shared by the suites and the benches: import them from here, never from a conftest.

Fixtures stay in the ``conftest.py`` files; what a test or a bench calls
(processes to start, spaces to make, settings to hand to a child process)
lives in these modules.
"""
