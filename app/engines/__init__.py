"""Engines a job can run on besides one job process: ``dask`` (XGBoost on a Dask cluster).

``routing`` decides at submission (asked for, or chosen because the dataset is in parts or larger
than one worker's memory budget) and refuses what cannot run; ``dask_jobs`` runs such a job in the
worker, whose job process is the Dask client; ``results`` hands out a prediction written in parts.
"""
