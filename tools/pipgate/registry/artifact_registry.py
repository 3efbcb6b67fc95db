"""``artifact-registry://LOCATION/PROJECT/REPOSITORY``: Google Artifact Registry.

A Python repository of Artifact Registry speaks the simple API and the legacy
upload API at ``https://LOCATION-python.pkg.dev/PROJECT/REPOSITORY/``, with
``oauth2accesstoken`` and an access token from google-auth application
default credentials as the password. Its REST API
(``artifactregistry.googleapis.com/v1``) tells the repository's mode, lists
every file with its hashes a thousand at a time (``files.list``), and deletes
a release (``packages.versions.delete``, a long-running operation; files of
a Python repository cannot be deleted one by one).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import urllib.parse
from collections.abc import Iterable, Sequence

from pipgate import index
from pipgate.allowlist import RegistrySpec
from pipgate.http import Answer, HttpError, client
from pipgate.names import NormalizedName, file_release
from pipgate.registry.credentials import Credentials, GoogleCredentials
from pipgate.registry.http import HttpRegistry
from pipgate.registry.interface import Held, RegistryError, RegistryKindError, Removal
from pipgate.urls import redact_url

ENDPOINT_OVERRIDE = "PIPGATE_ARTIFACT_REGISTRY_ENDPOINT"
"""Points artifact-registry:// at another host (a test stand-in or a proxy)."""
API = "https://artifactregistry.googleapis.com"
"""Artifact Registry's REST API, where a repository's mode is read."""
API_OVERRIDE = "PIPGATE_ARTIFACT_REGISTRY_API"
STANDARD = "STANDARD_REPOSITORY"
PAGE_SIZE = 1000
"""Files per page of ``files.list`` (the API's largest)."""
MAX_FILES = 1_000_000
"""A listing that goes on past this many files is refused, not followed for ever."""
OPERATION_POLLS = 60
"""Times a deletion's operation is read again before its outcome is called unknown."""
_MODES = {
    "REMOTE_REPOSITORY": "a remote repository (a pull-through cache of another index: it "
    "serves whatever that index has, approved or not)",
    "VIRTUAL_REPOSITORY": "a virtual repository (several repositories behind one URL: any "
    "remote one among them serves unapproved packages)",
}


def repository_url(location: str, project: str, repository: str) -> str:
    """The repository's Python endpoint (``…/PROJECT/REPOSITORY/``), or the override's."""
    override = os.environ.get(ENDPOINT_OVERRIDE)
    if override:
        return f"{override.rstrip('/')}/{project}/{repository}/"
    return f"https://{location}-python.pkg.dev/{project}/{repository}/"


def api_base() -> str:
    return (os.environ.get(API_OVERRIDE) or os.environ.get(ENDPOINT_OVERRIDE) or API).rstrip("/")


class ArtifactRegistry(HttpRegistry):
    """An Artifact Registry Python repository."""

    def __init__(self, spec: RegistrySpec, credentials: Credentials | None = None) -> None:
        assert spec.location is not None
        assert spec.project is not None
        assert spec.repository is not None
        upload = repository_url(spec.location, spec.project, spec.repository)
        super().__init__(
            spec,
            credentials if credentials is not None else GoogleCredentials(),
            upload_url=upload,
            simple_url=upload.rstrip("/") + "/simple/",
        )
        self.resource = (
            f"projects/{spec.project}/locations/{spec.location}/repositories/{spec.repository}"
        )

    # -- the REST API ---------------------------------------------------------------------------

    def _bearer(self) -> dict[str, str]:
        credentials = self.credentials.get()
        token = credentials[1] if credentials is not None else ""
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def _api(self, method: str, path: str, what: str, **query: str) -> dict[str, object]:
        """One call of the REST API: its JSON answer, a mapping; anything else an error."""
        url = f"{api_base()}/v1/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        try:
            answer: Answer
            if method == "DELETE":
                answer = client().delete(url, headers=self._bearer())
            else:
                answer = client().get(url, headers=self._bearer(), retries=1)
        except HttpError as exc:
            raise RegistryError(f"cannot {what} at {redact_url(url)}: {exc.reason}") from None
        if answer.status_code in (401, 403):
            raise RegistryError(
                f"the Artifact Registry API refused to {what} (HTTP {answer.status_code})",
                hint="the service account needs roles/artifactregistry.reader to read the "
                "repository and list files, roles/artifactregistry.repoAdmin to delete",
            )
        if answer.status_code >= 400:
            raise RegistryError(
                f"the Artifact Registry API answered HTTP {answer.status_code} when asked to {what}"
            )
        try:
            document = json.loads(answer.content)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise RegistryError(f"{redact_url(url)} did not answer a JSON object; cannot {what}")
        return document

    def check_usable(self) -> None:
        """The repository must be a standard one: only what was uploaded to it."""
        spec = self.spec
        try:
            resource = self._api("GET", self.resource, "read the repository's settings")
        except RegistryError as error:
            if "HTTP 40" in error.message:
                error.hint = (
                    "the service account needs artifactregistry.repositories.get "
                    "(roles/artifactregistry.reader or .writer) on the repository"
                )
            raise
        mode = resource.get("mode") or STANDARD
        if mode != STANDARD:
            described = _MODES.get(str(mode), f"a {str(mode)[:40]} repository")
            raise RegistryKindError(
                f"{spec.url} is {described}, not a standard repository",
                hint="the private registry must be a standard repository that holds only "
                "approved files: create one (gcloud artifacts repositories create NAME "
                "--repository-format=python --mode=standard-repository) and name it as "
                "registry; a remote repository may serve as upstream",
            )

    def inventory(self, also: Iterable[NormalizedName] = ()) -> dict[str, Held]:
        """Every file with its sha256, from ``files.list``: a page per thousand files."""
        held: dict[str, Held] = {}
        token = ""
        seen: set[str] = set()
        while True:
            query = {"pageSize": str(PAGE_SIZE)}
            if token:
                query["pageToken"] = token
            page = self._api(
                "GET", f"{self.resource}/files", "list the repository's files", **query
            )
            files = page.get("files", [])
            if not isinstance(files, list):
                raise RegistryError("the files listing's 'files' is not a list")
            for item in files:
                found = self._held(item)
                held[found.filename] = found
            if len(held) > MAX_FILES:
                raise RegistryError(f"the files listing goes on past {MAX_FILES} files; refused")
            token_value = page.get("nextPageToken") or ""
            if not isinstance(token_value, str):
                raise RegistryError("the files listing's nextPageToken is not text")
            if not token_value:
                return held
            if token_value in seen:
                raise RegistryError("the files listing repeats a page token; refused")
            seen.add(token_value)
            token = token_value

    def _held(self, item: object) -> Held:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RegistryError("the files listing holds an entry without a name")
        name = item["name"]
        prefix = f"{self.resource}/files/"
        if not name.startswith(prefix):
            raise RegistryError(
                f"the files listing names a file of another repository: {name[:200]!r}"
            )
        # The file ID escapes slashes; a Python repository's ID may be a path ending in the
        # file's own name.
        filename = urllib.parse.unquote(name[len(prefix) :]).rsplit("/", 1)[-1]
        if not index.safe_filename(filename):
            raise RegistryError(f"the files listing names no wheel or sdist: {filename[:200]!r}")
        digests = [
            h.get("value")
            for h in item.get("hashes") or []
            if isinstance(h, dict) and h.get("type") == "SHA256"
        ]
        sha256 = _hex_sha256(digests[0]) if len(digests) == 1 else None
        if sha256 is None:
            raise RegistryError(
                f"the files listing gives no single sha256 for {filename}",
                hint="pipgate verifies by hash; the listing must carry each file's SHA256",
            )
        owner = item.get("owner")
        created = item.get("createTime")
        return Held(
            filename,
            sha256,
            owner=owner if isinstance(owner, str) else "",
            upload_time=created if isinstance(created, str) else None,
        )

    def upload_times(self, projects: Iterable[NormalizedName]) -> dict[str, str]:
        """From ``files.list``: the simple pages of Artifact Registry carry no times."""
        return {n: h.upload_time for n, h in self.inventory().items() if h.upload_time}

    # -- deletion -------------------------------------------------------------------------------

    @property
    def removal(self) -> Removal:
        return Removal.RELEASE

    def remove(self, files: Sequence[Held]) -> None:
        """``packages.versions.delete`` of the release the files belong to, then its
        operation followed until done."""
        owners = {h.owner for h in files}
        releases = {file_release(h.filename) for h in files}
        owner = owners.pop() if len(owners) == 1 else ""
        version_prefix = f"{self.resource}/packages/"
        if not owner.startswith(version_prefix) or "/versions/" not in owner or len(releases) != 1:
            raise RegistryError(
                "the files to remove do not name one version of this repository; nothing removed",
                hint=self.removal_hint,
            )
        operation = self._api(
            "DELETE", owner, f"delete {owner.rsplit('/', 3)[-3]} {owner.rsplit('/', 1)[-1]}"
        )
        for _ in range(OPERATION_POLLS):
            if operation.get("done") is True:
                error = operation.get("error")
                if error:
                    message = error.get("message") if isinstance(error, dict) else error
                    raise RegistryError(
                        f"Artifact Registry could not delete {owner}: {str(message)[:300]}"
                    )
                return
            name = operation.get("name")
            if not isinstance(name, str) or not name.startswith(
                f"projects/{self.spec.project}/locations/{self.spec.location}/operations/"
            ):
                raise RegistryError("the deletion answered no operation of this project")
            time.sleep(1)
            operation = self._api("GET", name, "follow the deletion")
        raise RegistryError(
            f"the deletion of {owner} did not finish; its outcome is unknown",
            hint="run 'pipgate verify' later to see what the repository holds",
        )

    @property
    def removal_hint(self) -> str:
        spec = self.spec
        return (
            f"delete the version with 'gcloud artifacts versions delete VERSION --package=NAME "
            f"--repository={spec.repository} --location={spec.location} "
            f"--project={spec.project}'"
        )


def _hex_sha256(value: object) -> str | None:
    """A Hash value of the REST API (bytes, base64 in JSON) as hex; None unless 32 bytes."""
    if not isinstance(value, str) or len(value) > 100:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None
