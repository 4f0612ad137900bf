"""Serving a plugin under eKuiper: the runtime, its workers and the state stores.

Imports :mod:`kuiperlite.declare` and :mod:`kuiperlite.protocol` (and
:mod:`kuiperlite.errors`), never the build tools or eKuiper's side.
"""
