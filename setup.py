"""Only for the C part: everything else is in pyproject.toml.

``ingest._fanout`` (the SFU's per-listener loop, ``ingest/fanout_build.py``)
is built by cffi at install; it is optional, so an install without a C
compiler still succeeds and the SFU uses its Python loop.
"""

from setuptools import setup

setup(cffi_modules=["ingest/fanout_build.py:ffibuilder"])
