"""What runs, what failed and why, and where delays come from: Prometheus metrics, the
overview behind the dashboard and ``tabjob top``, and the recent-failures index."""

# prometheus-client's multiprocess directory variable
# (https://prometheus.github.io/client_python/multiprocess/). Named here, where importing it
# loads nothing: the embedded stack's supervisor sets it for its children without loading
# prometheus-client (app.local.shared_metrics).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
