"""What runs, what failed and why, and where delays come from: Prometheus metrics, the
overview behind the dashboard and ``tabjob top``, and the recent-failures index."""
