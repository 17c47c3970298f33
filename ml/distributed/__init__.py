"""The distributed engine: XGBoost on a Dask cluster, over a dataset stored in parts.

``ml.distributed.tasks`` runs on the Dask workers (it reads parts through presigned URLs and trains
inside XGBoost's collective); ``ml.distributed.engine`` is the Dask client side, run in a tabjob
job process. Like the rest of ``ml``, it knows nothing of tenants, queues or job records.
"""
