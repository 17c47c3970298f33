"""tabjob's benchmark harness: ``python -m bench [--quick] [--json PATH]``.

Starts an embedded stack in a temporary directory and measures, side by side with a baseline
(the same ``ml`` calls in-process, or a constant FastAPI app), the overhead of fit and predict,
dispatch latency, lane fairness, API request rates, a job's peak memory and job throughput.
"""
