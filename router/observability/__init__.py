"""Logs, the access log, metrics, traces, and redaction of secrets."""
