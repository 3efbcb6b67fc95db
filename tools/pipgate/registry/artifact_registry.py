"""``artifact-registry://LOCATION/PROJECT/REPOSITORY``: Google Artifact Registry.

A Python repository of Artifact Registry speaks the simple API and the legacy
upload API at ``https://LOCATION-python.pkg.dev/PROJECT/REPOSITORY/``, with
``oauth2accesstoken`` and an access token from google-auth application
default credentials as the password.
"""

from __future__ import annotations

import os

from pipgate.allowlist import RegistrySpec
from pipgate.registry.credentials import Credentials, GoogleCredentials
from pipgate.registry.http import HttpRegistry

ENDPOINT_OVERRIDE = "PIPGATE_ARTIFACT_REGISTRY_ENDPOINT"
"""Points artifact-registry:// at another host (a test stand-in or a proxy)."""


class ArtifactRegistry(HttpRegistry):
    """An Artifact Registry Python repository."""

    def __init__(self, spec: RegistrySpec, credentials: Credentials | None = None) -> None:
        override = os.environ.get(ENDPOINT_OVERRIDE)
        upload = spec.upload_url
        if override:
            upload = f"{override.rstrip('/')}/{spec.project}/{spec.repository}/"
        super().__init__(
            spec,
            credentials if credentials is not None else GoogleCredentials(),
            upload_url=upload,
            simple_url=upload.rstrip("/") + "/simple/",
        )

    @property
    def removal_hint(self) -> str:
        spec = self.spec
        return (
            f"delete it with 'gcloud artifacts files delete FILE --repository="
            f"{spec.repository} --location={spec.location} --project={spec.project}'"
        )
