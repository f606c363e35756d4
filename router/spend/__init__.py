"""Spend: prices per target, the cost of a request, and the usage ledger with its reports.

- `config`: the YAML shapes (`spend:`, a target's `price`, a provider's `prices`).
- `prices`: prices compiled into integers at load time, and a request's cost from its usage.
- `entry`: what the request path hands the ledger (a small tuple) and what the writer makes
  of it (a database row).
- `ledger`: the bounded queue and the one writer task per process.
- `stores`, `sqlite_store`, `postgres_store`: where rows go: SQLite (the default) or
  PostgreSQL.
- `report`: totals grouped by key, model, provider, ...; served by `cli`
  (`llm-switchyard usage`) and `admin` (`GET /admin/usage`).
"""
