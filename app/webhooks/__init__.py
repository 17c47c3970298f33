"""Webhook notifications: target checks, sealed secrets, the durable outbox in Valkey and its
delivery threads, and the registry's notices."""
