"""Checking uploaded data without trusting it: the Parquet footer and target bounded in bytes
(``limits``), in memory-limited children forked from a forkserver (``pool``, ``preload``), and
the record-size rules the workers apply without loading pyarrow (``record_limits``). This
``__init__`` imports nothing: a worker importing ``record_limits`` must not load pyarrow."""
