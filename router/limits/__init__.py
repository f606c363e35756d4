"""Rate-limit policies: compiled tables, admission, backends, headers."""
