"""The template is copied and renamed before use (see docs/writing-a-plugin.md), not run."""

collect_ignore_glob = ["_template/*"]
