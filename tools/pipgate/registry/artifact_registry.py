"""``artifact-registry://LOCATION/PROJECT/REPOSITORY``: Google Artifact Registry.

A Python repository of Artifact Registry speaks the simple API and the legacy
upload API at ``https://LOCATION-python.pkg.dev/PROJECT/REPOSITORY/``, with
``oauth2accesstoken`` and an access token from google-auth application
default credentials as the password.
"""

from __future__ import annotations

import json
import os

from pipgate.allowlist import RegistrySpec
from pipgate.http import HttpError, client
from pipgate.registry.credentials import Credentials, GoogleCredentials
from pipgate.registry.http import HttpRegistry
from pipgate.registry.interface import RegistryError, RegistryKindError
from pipgate.urls import redact_url

ENDPOINT_OVERRIDE = "PIPGATE_ARTIFACT_REGISTRY_ENDPOINT"
"""Points artifact-registry:// at another host (a test stand-in or a proxy)."""
API = "https://artifactregistry.googleapis.com"
"""Artifact Registry's REST API, where a repository's mode is read."""
API_OVERRIDE = "PIPGATE_ARTIFACT_REGISTRY_API"
STANDARD = "STANDARD_REPOSITORY"
_MODES = {
    "REMOTE_REPOSITORY": "a remote repository (a pull-through cache of another index: it "
    "serves whatever that index has, approved or not)",
    "VIRTUAL_REPOSITORY": "a virtual repository (several repositories behind one URL: any "
    "remote one among them serves unapproved packages)",
}


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

    def check_usable(self) -> None:
        """The repository must be a standard one: only what was uploaded to it."""
        spec = self.spec
        base = os.environ.get(API_OVERRIDE) or os.environ.get(ENDPOINT_OVERRIDE) or API
        url = (
            f"{base.rstrip('/')}/v1/projects/{spec.project}/locations/{spec.location}/"
            f"repositories/{spec.repository}"
        )
        credentials = self.credentials.get()
        token = credentials[1] if credentials is not None else ""
        try:
            answer = client().get(url, headers={"Authorization": f"Bearer {token}"}, retries=1)
        except HttpError as exc:
            raise RegistryError(
                f"cannot read the repository's settings at {redact_url(url)}: {exc.reason}"
            ) from None
        if answer.status_code >= 400:
            raise RegistryError(
                f"the Artifact Registry API answered HTTP {answer.status_code} for "
                f"{spec.repository}",
                hint="the service account needs artifactregistry.repositories.get "
                "(roles/artifactregistry.reader or .writer) on the repository",
            )
        try:
            mode = json.loads(answer.content).get("mode") or STANDARD
        except (ValueError, AttributeError):
            raise RegistryError(f"{redact_url(url)} did not answer a repository") from None
        if mode != STANDARD:
            described = _MODES.get(str(mode), f"a {str(mode)[:40]} repository")
            raise RegistryKindError(
                f"{spec.url} is {described}, not a standard repository",
                hint="the private registry must be a standard repository that holds only "
                "approved files: create one (gcloud artifacts repositories create NAME "
                "--repository-format=python --mode=standard-repository) and name it as "
                "registry; a remote repository may serve as upstream",
            )

    @property
    def removal_hint(self) -> str:
        spec = self.spec
        return (
            f"delete it with 'gcloud artifacts files delete FILE --repository="
            f"{spec.repository} --location={spec.location} --project={spec.project}'"
        )
