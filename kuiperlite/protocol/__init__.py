"""The plugin's half of the wire: the bytes, the nng sockets and the channels.

Imports :mod:`kuiperlite.declare` (and :mod:`kuiperlite.errors`) only.
"""
