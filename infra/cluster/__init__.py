"""Kubernetes clusters: a local kind cluster (dev) and GKE (staging, production)."""
