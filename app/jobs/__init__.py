"""Running jobs: the Dramatiq broker, the job actor, its middleware and the worker process."""
