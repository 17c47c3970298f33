"""The core every layer stands on: settings, errors, the domain's records and ids, the
object store, API keys, logging, and the services a process wires from them. Imports nothing
from the layers above (inspection, tenancy, webhooks, compute, usecases, jobs, api)."""
