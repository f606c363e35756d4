"""Compiling the config into the routing graph, reloading it, and explaining it."""
