"""What each tenant may hold and keep: quotas, revoked upload URLs, idempotency keys, every copy
of a dataset's bytes, and the retention sweep."""
