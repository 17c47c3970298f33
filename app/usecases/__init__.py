"""What a user can do, shared by the legacy routes and ``/v1``: one module per resource.

Bad data is refused here, at submission, from the Parquet footer and (for fits) the ``y``
column alone; only jobs that can run are queued. Wording shown to users about waiting lives in
``app.usecases.queueing``.
"""
