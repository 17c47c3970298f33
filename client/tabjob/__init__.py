"""tabjob's Python client: upload Parquet, fit, predict and download, over the ``/v1`` API.

    import tabjob

    with tabjob.Client("http://127.0.0.1:8000") as client:
        train = client.upload("train.parquet")
        model = client.wait(client.fit(train.id).id)

Needs only httpx and pyarrow (pandas to upload a DataFrame); none of the server.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tabjob-client")
except PackageNotFoundError:  # run from a source tree without installing
    __version__ = "0+unknown"

from tabjob.client import Client
from tabjob.csv_input import CsvConversion
from tabjob.errors import (
    ApiError,
    InvalidDataset,
    JobCanceled,
    JobEndedWithoutResult,
    JobFailed,
    TabjobClientError,
    WaitTimeout,
)
from tabjob.job_logs import LogLine, LogPage
from tabjob.job_parts import Estimate, ExpectedStart, Step, Webhook
from tabjob.model_results import Evaluation, Model, ModelExport, Validation
from tabjob.results import (
    Column,
    Dataset,
    ErrorInfo,
    EventPage,
    Job,
    JobEvent,
    Page,
    QueueInfo,
)
from tabjob.webhooks import verify_webhook

__all__ = [
    "ApiError",
    "Client",
    "Column",
    "CsvConversion",
    "Dataset",
    "ErrorInfo",
    "Estimate",
    "Evaluation",
    "EventPage",
    "ExpectedStart",
    "InvalidDataset",
    "Job",
    "JobCanceled",
    "JobEndedWithoutResult",
    "JobEvent",
    "JobFailed",
    "LogLine",
    "LogPage",
    "Model",
    "ModelExport",
    "Page",
    "QueueInfo",
    "Step",
    "TabjobClientError",
    "Validation",
    "WaitTimeout",
    "Webhook",
    "__version__",
    "verify_webhook",
]
