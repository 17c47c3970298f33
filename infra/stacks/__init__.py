"""One module per cluster kind (kind, gke, existing), all ending in the same app layer."""
