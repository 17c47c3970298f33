"""Artifact Registry: the Docker repository CI pushes tabjob's images to."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

REPOSITORY_ID = "tabjob"


class ArtifactRegistry(pulumi.ComponentResource):
    """A regional Docker repository that GKE's nodes may pull from.

    Attributes:
        url: <region>-docker.pkg.dev/<project>/tabjob, the prefix of every image reference.
    """

    url: str

    def __init__(
        self,
        name: str,
        *,
        project: str,
        region: str,
        reader_member: pulumi.Input[str],
        provider: gcp.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:platform:ArtifactRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        repository = gcp.artifactregistry.Repository(
            name,
            repository_id=REPOSITORY_ID,
            location=region,
            format="DOCKER",
            description="tabjob images (API, CPU workers, GPU worker)",
            opts=child,
        )
        gcp.artifactregistry.RepositoryIamMember(
            f"{name}-nodes-read",
            repository=repository.name,
            location=region,
            role="roles/artifactregistry.reader",
            member=reader_member,
            opts=child,
        )
        self.url = f"{region}-docker.pkg.dev/{project}/{REPOSITORY_ID}"
        self.register_outputs({"url": self.url})
