"""The HTTP service: the Starlette app, endpoints, responses, auth, drain, admin."""
