"""Artifact Registry: the Docker repository CI pushes tabjob's images to."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

REPOSITORY_ID = "tabjob"
# Every push adds a CPU image and a multi-GB CUDA image to each stack's repository. A version
# is deleted once it is older than DELETE_AFTER_DAYS unless it is one of the KEEP_RECENT most
# recent of its image (KEEP wins over DELETE): what runs, and what a rollback returns to, stays.
# https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy
KEEP_RECENT = 20
DELETE_AFTER_DAYS = 60
CLEANUP_POLICIES = [
    {"id": "keep-recent", "action": "KEEP", "most_recent_versions": {"keep_count": KEEP_RECENT}},
    {
        "id": "delete-old",
        "action": "DELETE",
        "condition": {"tag_state": "ANY", "older_than": f"{DELETE_AFTER_DAYS * 86400}s"},
    },
]


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
            cleanup_policies=CLEANUP_POLICIES,
            # Applied for real, not a dry run: the point is to stop paying for every push.
            cleanup_policy_dry_run=False,
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
