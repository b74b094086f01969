"""The application layer: the engine a host builds once per process, the
session it opens per transaction, and the unit of work every write runs in.

Import the public names from ``cxflow`` (``cxflow.Engine``, ``cxflow.Session``,
...); the modules here are ``engine`` (engine and session), ``unit`` (unit of
work and writer), ``retry`` (the retry policy) and ``reactors``.
"""
