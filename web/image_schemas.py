"""Pydantic models of images and registry credentials (issue 15): what /api/images and
/api/registries take and answer."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

import validation
from web.schemas import ByteSize, ImageRef, JobOut, Strict, WaitQuery

NodeName = Annotated[str, Field(max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                description="a node's name (GET /api/nodes lists them)")]

# host[:port] as the first component of an image reference (the reference grammar's domain)
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
REGISTRY_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?$")


def check_registry(value: str) -> str:
    """A registry as image references name it: host[:port], where Docker reads the first
    component of a reference as a registry only when it has a dot or a port or is
    localhost (credentials for "myregistry" would never be used)."""
    if len(value) > 255 or not REGISTRY_RE.match(value):
        raise ValueError(f"{value!r} is not a registry host[:port] like 127.0.0.1:5000 or "
                         "registry.example.com")
    host, _, port = value.partition(":")
    if port and not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    if "." not in host and not port and host != "localhost":
        raise ValueError(f"{value!r} would be read as a Docker Hub repository, not a "
                         "registry: give it a dot or a port (registry.local, host:5000)")
    return value


Registry = Annotated[str, AfterValidator(check_registry), WithJsonSchema({
    "type": "string", "maxLength": 255, "pattern": REGISTRY_RE.pattern,
    "examples": ["127.0.0.1:5000", "registry.example.com"]})]
# the same in a path (an OpenAPI parameter takes no list of examples)
RegistryParam = Annotated[str, AfterValidator(check_registry), WithJsonSchema({
    "type": "string", "maxLength": 255, "pattern": REGISTRY_RE.pattern})]
ImageParam = Annotated[str, AfterValidator(validation.check_image), WithJsonSchema({
    "type": "string", "maxLength": 255, "pattern": validation.IMAGE_RE.pattern})]


# --- images -------------------------------------------------------------------------------

class ImagePath(BaseModel):
    ref: ImageParam = Field(description="a tag (127.0.0.1:5000/team/web:v2; :latest when "
                          "none), a digest (name@sha256:...) or an id or a prefix of one")


class ImageListQuery(Strict):
    node: Optional[NodeName] = None


class ImageGetQuery(Strict):
    node: Optional[NodeName] = None


class ImageDeleteQuery(WaitQuery):
    node: Optional[NodeName] = Field(None, description="default: every node holding it")
    force: bool = Field(False, description="also a reference other tags share or a stopped "
                        "container uses; never an image a running container uses")


class PullBody(Strict):
    image: ImageRef
    node: Optional[NodeName] = Field(None, description="default: every ready node")


class PushBody(Strict):
    image: ImageRef
    node: Optional[NodeName] = Field(None, description="default: a ready node holding it")


class TagBody(Strict):
    source: ImageRef
    target: ImageRef
    node: Optional[NodeName] = Field(None, description="default: every node holding source")


class PruneBody(Strict):
    node: Optional[NodeName] = Field(None, description="default: every ready node")


class ImageOut(BaseModel):
    node: str
    id: str = Field(description="the engine's image id (sha256:...)")
    short_id: str
    tags: list[str]
    digests: list[str] = Field(description="repository digests (name@sha256:...)")
    size: Optional[int] = Field(None, description="bytes")
    created: Optional[datetime] = None
    pulled: Optional[datetime] = Field(None, description="when this installation pulled it "
                                       "(null: it did not; image GC never removes it)")
    last_used: Optional[datetime] = Field(None, description="the last time a container of "
                                          "it was created or ran, as recorded here")
    containers: list[str] = Field(description="containers (not removed) made from it")
    deployments: list[str] = Field(description="the deployments of those containers")
    labels: dict[str, str] = Field(default_factory=dict)
    listed_at: datetime = Field(description="when the node last listed its engine's images")


class ImageList(BaseModel):
    items: list[ImageOut]
    next: Optional[str] = None


class ImageFound(BaseModel):
    reference: str
    items: list[ImageOut] = Field(description="the image it names on each node holding it")


class JobsOut(BaseModel):
    """Every job a request made (one per node); when it made one, that job's fields are at
    the top level too, as every other job route answers (with Location)."""
    model_config = ConfigDict(extra="allow")
    jobs: list[JobOut]


class CacheSettings(Strict):
    cache_size: Optional[ByteSize] = Field(
        description="bytes of pulled images kept per node (256m, 2g, bytes; 0: no limit); "
                    "null: the configuration's HARBORMASTER_IMAGE_CACHE_SIZE applies")


class CacheSettingsOut(BaseModel):
    cache_size: Optional[int] = Field(None, description="set here, or null")
    configured_cache_size: int = Field(description="HARBORMASTER_IMAGE_CACHE_SIZE (0: none)")
    effective_cache_size: int = Field(description="what image GC applies (0: no limit)")


# --- registries ---------------------------------------------------------------------------

class RegistryBody(Strict):
    registry: Registry
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=4096, description="stored apart; never "
                          "returned, logged or sent in a message",
                          json_schema_extra={"writeOnly": True, "format": "password"})


class RegistryPath(BaseModel):
    registry: RegistryParam


class RegistryOut(BaseModel):
    registry: str
    username: str
    created_by: Optional[str] = None
    created_at: datetime


class RegistryList(BaseModel):
    items: list[RegistryOut]
    next: Optional[str] = None
