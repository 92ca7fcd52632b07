"""The search page and /api/v1/search."""

import re

from flask import Blueprint, jsonify, render_template, request
from flask_login import current_user

from school import access
from school.api import bp as api
from school.formatting import clock
from school.pagination import page_number
from school.search import service

bp = Blueprint("search", __name__)
DAYS = {"week": 7, "month": 31, "year": 366}


def _params() -> dict:
    course = request.args.get("course", "")
    return {
        "text": request.args.get("q", ""),
        "page": page_number(request.args.get("page")),
        "kind": request.args.get("type") if request.args.get("type") in service.KINDS else None,
        # ASCII digits only: str.isdigit() also takes ², ① and full-width digits
        "course_id": int(course) if re.fullmatch(r"[0-9]{1,9}", course) else None,
        "days": DAYS.get(request.args.get("date", "")),
        "viewer": current_user,
    }


def _links(params: dict) -> dict:
    """The search's own parameters for the pager and the correction link (nothing else the
    address held: url_for would take `endpoint` or `_external` as its own arguments)."""
    links = {"q": params["text"], "type": params["kind"], "course": params["course_id"]}
    links["date"] = next((name for name, days in DAYS.items() if days == params["days"]), None)
    return {name: value for name, value in links.items() if value}


@bp.get("/search")
@access.signed_in
def page():
    """Search the learning library (titles, lesson text, subtitles, documents)."""
    params = _params()
    results = service.search(**params)
    return render_template(
        "search/search.html",
        results=results,
        groups=service.group(results.hits),
        params=params,
        links=_links(params),
        clock=clock,
        mark=service.mark,
        courses=service.course_choices(current_user),
    )


@api.get("/search")
@access.signed_in
def api_search():
    """Search the learning library.
    ---
    get:
      summary: Search lessons, subtitles (with the second to jump to) and documents
      parameters:
        - in: query
          name: q
          required: true
          description: the first 100 characters are searched
          schema: {type: string}
        - in: query
          name: type
          description: >-
            lesson: lesson titles and text; video: lessons with a video or audio (their text and
            subtitles); subtitle: subtitle cues; document: attachment pages
          schema: {type: string, enum: [lesson, video, subtitle, document]}
        - {in: query, name: course, schema: {type: integer}}
        - {in: query, name: date, schema: {type: string, enum: [week, month, year]}}
        - {in: query, name: page, schema: {type: integer, minimum: 1}}
      responses:
        200:
          content:
            application/json:
              schema:
                type: object
                properties:
                  query: {type: string}
                  total: {type: integer}
                  page: {type: integer}
                  more: {type: boolean, description: "there is a next page"}
                  exact: {type: boolean, description: "total counts every hit, else those to the next page"}
                  truncated: {type: boolean, description: "only the first 100 characters were searched"}
                  partial: {type: boolean}
                  suggestion: {type: string, nullable: true}  # the query with a mistyped term corrected
                  unavailable: {type: boolean}
                  hits:
                    type: array
                    items:
                      type: object
                      properties:
                        kind: {type: string}
                        course_id: {type: integer}
                        course_title: {type: string}
                        lesson_id: {type: integer, nullable: true}
                        lesson_title: {type: string, nullable: true}
                        html: {type: string}
                        text: {type: string}
                        start_seconds: {type: integer, nullable: true}
                        time: {type: string, nullable: true}
                        page: {type: integer, nullable: true}
                        attachment_id: {type: integer, nullable: true}
                        attachment_name: {type: string, nullable: true}
        401: {$ref: '#/components/responses/Error'}
    """
    results = service.search(**_params())
    return jsonify(
        query=results.query,
        total=results.total,
        page=results.page,
        more=results.more,
        exact=results.exact,
        truncated=results.truncated,
        partial=results.partial,
        suggestion=results.suggestion,
        unavailable=results.unavailable,
        hits=[service.hit_json(hit) for hit in results.hits],
    )
