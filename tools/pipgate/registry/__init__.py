"""The registry port: one interface (``interface.py``), one module per backend.

- ``file.py``: ``file://DIR``, the embedded PEP 503 tree on disk.
- ``http.py``: ``http(s)://``, any index with the simple and legacy upload APIs.
- ``artifact_registry.py``: ``artifact-registry://LOCATION/PROJECT/REPOSITORY``.
- ``credentials.py``: from the environment, keyring, or Google's application default.

Core code receives a ``Registry``; only the command line's edge makes one.
"""

from pipgate.registry.artifact_registry import ENDPOINT_OVERRIDE, ArtifactRegistry
from pipgate.registry.credentials import Credentials, EnvironmentCredentials, GoogleCredentials
from pipgate.registry.file import FileRegistry
from pipgate.registry.http import HttpRegistry, MultipartFile, legacy_upload_fields, twine_refuses
from pipgate.registry.interface import (
    Held,
    Registry,
    RegistryConflictError,
    RegistryError,
    Removal,
    RemovalUnsupportedError,
    UploadRefusedError,
)

__all__ = [
    "ENDPOINT_OVERRIDE",
    "ArtifactRegistry",
    "Credentials",
    "EnvironmentCredentials",
    "FileRegistry",
    "GoogleCredentials",
    "Held",
    "HttpRegistry",
    "MultipartFile",
    "Registry",
    "RegistryConflictError",
    "RegistryError",
    "Removal",
    "RemovalUnsupportedError",
    "UploadRefusedError",
    "legacy_upload_fields",
    "twine_refuses",
]
