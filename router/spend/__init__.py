"""Spend: prices per target, the cost of a request, and the usage ledger with its reports.

- `config`: the YAML shapes (`spend:`, a target's `price`, a provider's `prices`).
- `prices`: prices compiled into integers at load time, and a request's cost from its usage.
- `entry`: the ledger row of a finished request, made when it ends, as the writer binds it.
- `ledger`: the bounded queue and the one writer task per process.
- `stores`, `sqlite_store`, `postgres_store`: where rows go: SQLite (the default) or
  PostgreSQL.
- `report`: totals grouped by key, model, provider, ...; served by `cli`
  (`llm-switchyard usage`) and `admin` (`GET /admin/usage`).
"""
