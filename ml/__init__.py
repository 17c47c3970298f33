"""Pure ML for tabjob: fit and predict on Parquet behind URLs. Imports nothing of ``app``."""
