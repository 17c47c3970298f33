"""Job logs kept in the object store: written by workers (``sink``, ``writer``, ``middleware``,
with the job process's lines through ``job_side`` and ``relay``), read by the API (``chunks``)."""
