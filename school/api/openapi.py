"""OpenAPI 3 document built by apispec from the API views' docstrings and the url_map.

Why apispec: it reads the routes Flask already has (no second route table to keep in step),
keeps views plain Flask functions, and is maintained by the marshmallow project.
"""

from apispec import APISpec
from apispec.yaml_utils import load_operations_from_docstring
from apispec_webframeworks.flask import FlaskPlugin

USER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "display_name": {"type": "string"},
        "username": {"type": "string", "nullable": True},
        "phone": {"type": "string", "nullable": True},
        "roles": {"type": "array", "items": {"type": "string"}},
        "organizer_of": {"type": "array", "items": {"type": "integer"}},
        "home_org": {
            "type": "object",
            "nullable": True,
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
        },
        "member_status": {"type": "string", "nullable": True, "enum": ["full", "probationary", None]},
        "employment": {"type": "string", "nullable": True, "enum": ["working", "retired", None]},
        "floating": {"type": "boolean"},
        "active": {"type": "boolean"},
        "language": {"type": "string", "nullable": True},
        "large_text": {"type": "boolean"},
    },
}
ORG_SUMMARY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "code": {"type": "string", "nullable": True},
        "name": {"type": "string"},
        "kind": {"type": "string"},
        "members": {"type": "integer"},
    },
}
ORG = {
    "type": "object",
    "properties": {
        **ORG_SUMMARY["properties"],
        "parent_id": {"type": "integer", "nullable": True},
        "children": {"type": "array", "items": ORG_SUMMARY},
    },
}
UPLOAD = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "offset": {"type": "integer"},
        "size": {"type": "integer"},
        "purpose": {"type": "string"},
        "chunk_size": {"type": "integer"},
    },
}
PROGRESS = {
    "type": "object",
    "properties": {
        "coverage": {"type": "number", "description": "share of the media watched, 0–1"},
        "position": {"type": "number", "description": "seconds, where to resume"},
        "watched": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "completed": {"type": "boolean"},
        "read_seconds": {"type": "number"},
        "requirement_met": {"type": "boolean", "description": "watch/read/confirm part done"},
        "superseded": {"type": "boolean", "description": "opened on another device since"},
    },
}
VIEWING = {
    "allOf": [
        {"$ref": "#/components/schemas/Progress"},
        {
            "type": "object",
            "properties": {
                "session_id": {"type": "string"},
                "kind": {"type": "string", "enum": ["watch", "read"]},
                "duration": {"type": "number"},
                "beat_seconds": {"type": "integer"},
                "credit_hours": {"type": "number"},
            },
        },
    ]
}
ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
}


def document(app) -> dict:
    """The OpenAPI document for every /api/v1 route that has operations in its docstring."""
    spec = APISpec(
        title="手机党校 API",
        version="1",
        openapi_version="3.0.3",
        plugins=[FlaskPlugin()],
        info={"description": "Session cookie + X-CSRFToken header, or Authorization: Bearer <token>."},
        servers=[{"url": "/"}],
    )
    spec.components.schema("User", USER)
    spec.components.schema("Org", ORG)
    spec.components.schema("Error", ERROR)
    spec.components.schema("Upload", UPLOAD)
    spec.components.schema("Progress", PROGRESS)
    spec.components.schema("Viewing", VIEWING)
    spec.components.response(
        "Error",
        {
            "description": "Error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("cookie", {"type": "apiKey", "in": "cookie", "name": "dx_session"})
    for endpoint, view in sorted(app.view_functions.items()):
        if endpoint.startswith("api.") and load_operations_from_docstring(view.__doc__ or ""):
            spec.path(view=view, app=app)
    return spec.to_dict()
