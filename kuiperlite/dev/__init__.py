"""eKuiper's side, for development: what kuiperlite does in eKuiper's place.

Nothing on the plugin side imports this package: a plugin running under
eKuiper never loads it.
"""
