"""API endpoints. Each docstring's YAML after '---' is its OpenAPI operation (apispec)."""

from flask import current_app, jsonify, request, session
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from school import access, db
from school.accounts import service as accounts
from school.api import bp
from school.api.openapi import document
from school.errors import Invalid
from school.orgs import service as orgs
from school.pagination import page_number, paginate


def json_body() -> dict:
    """The request's JSON object; anything else is a 400 with a clear message."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Invalid(_("The request body must be a JSON object."))
    return data


def user_json(user) -> dict:
    org = user.home_org
    return {
        "id": user.id,
        "display_name": user.display_name,
        "username": user.username,
        "phone": user.phone,
        "roles": sorted(user.roles),
        "organizer_of": user.organizer_org_ids,
        "home_org": {"id": org.id, "name": org.name} if org else None,
        "member_status": user.member_status,
        "employment": user.employment,
        "floating": user.floating,
        "active": user.active,
        "language": user.language,
        "large_text": user.large_text,
    }


@bp.get("/csrf-token")
@access.public
def csrf_token():
    """A CSRF token for JSON calls made with the session cookie.
    ---
    get:
      summary: CSRF token to send as X-CSRFToken on state-changing calls
      responses:
        200:
          content:
            application/json:
              schema: {type: object, properties: {csrf_token: {type: string}}}
    """
    return jsonify(csrf_token=generate_csrf())


@bp.post("/session")
@access.public
def sign_in():
    """Sign in with the session cookie.
    ---
    post:
      summary: Sign in by phone number or username
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [login, password]
              properties:
                login: {type: string}
                password: {type: string}
                code:
                  type: string
                  description: >-
                    authenticator-app or recovery code, for accounts with two-factor sign-in
                    (without it they get 401 with error code two_factor_required)
      responses:
        200: {content: {application/json: {schema: {$ref: '#/components/schemas/User'}}}}
        400: {$ref: '#/components/responses/Error'}
        401: {$ref: '#/components/responses/Error'}
        429: {$ref: '#/components/responses/Error'}
    """
    data = json_body()
    login, password = data.get("login"), data.get("password")
    if not isinstance(login, str) or not isinstance(password, str) or not login or not password:
        raise Invalid(_("Please enter your phone number or username and your password."))
    code = data.get("code") if isinstance(data.get("code"), str) else None  # two-factor accounts
    address = request.remote_addr or ""
    user = accounts.authenticate(login, password, address, db.utcnow(), current_app.config, code=code)
    db.session.commit()
    login_user(user)
    session.permanent = True
    return jsonify(user_json(user))


@bp.delete("/session")
@access.signed_in
def sign_out():
    """Sign out this session.
    ---
    delete:
      summary: Sign out
      responses:
        204: {description: Signed out}
        401: {$ref: '#/components/responses/Error'}
    """
    logout_user()
    return "", 204


@bp.get("/me")
@access.signed_in
def me():
    """The signed-in user.
    ---
    get:
      summary: Who am I
      responses:
        200: {content: {application/json: {schema: {$ref: '#/components/schemas/User'}}}}
        401: {$ref: '#/components/responses/Error'}
    """
    return jsonify(user_json(current_user))


@bp.get("/orgs/<int:org_id>")
@access.organizer
def org(org_id: int):
    """An organisation in my subtree with its children and head-counts.
    ---
    get:
      summary: Organisation with children and head-counts
      parameters:
        - {in: path, name: org_id, required: true, schema: {type: integer}}
      responses:
        200: {content: {application/json: {schema: {$ref: '#/components/schemas/Org'}}}}
        401: {$ref: '#/components/responses/Error'}
        403: {$ref: '#/components/responses/Error'}
        404: {$ref: '#/components/responses/Error'}
    """
    access.require(access.may_administer_org(current_user, org_id))
    node = orgs.get_org(org_id)
    return jsonify(
        id=node.id,
        code=node.code,
        name=node.name,
        kind=node.kind,
        parent_id=node.parent_id,
        members=orgs.member_count(node),
        children=[
            {"id": c.id, "code": c.code, "name": c.name, "kind": c.kind, "members": n}
            for c, n in orgs.children_with_counts(node)
        ],
    )


@bp.get("/members")
@access.organizer
def members():
    """Members of my subtree.
    ---
    get:
      summary: Members of my subtree, searchable and paged
      parameters:
        - {in: query, name: org_id, schema: {type: integer}}
        - {in: query, name: q, schema: {type: string}}
        - {in: query, name: page, schema: {type: integer, minimum: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, maximum: 100}}
      responses:
        200:
          content:
            application/json:
              schema:
                type: object
                properties:
                  items: {type: array, items: {$ref: '#/components/schemas/User'}}
                  page: {type: integer}
                  per_page: {type: integer}
                  total: {type: integer}
        401: {$ref: '#/components/responses/Error'}
        403: {$ref: '#/components/responses/Error'}
    """
    org_id = access.org_param(request.args.get("org_id"))
    stmt = orgs.members_stmt(current_user, org_id, request.args.get("q", ""))
    per_page = page_number(request.args.get("per_page") or current_app.config["PER_PAGE"])
    page = paginate(stmt, page_number(request.args.get("page")), per_page)
    return jsonify(
        items=[user_json(u) for u in page.items],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
    )


@bp.get("/openapi.json")
@access.public
def openapi():
    """This API's OpenAPI 3 document."""
    return jsonify(document(current_app))
