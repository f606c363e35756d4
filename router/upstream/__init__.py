"""Talking to upstreams: the provider contract, sending, streams, errors."""
