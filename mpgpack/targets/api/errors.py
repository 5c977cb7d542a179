"""Client errors as one shape, `{"error": "...", "errors": [...]}`, with messages a person can act on.

pydantic reports *what* failed (type, location, input, constraint); a broken feature rule is
worded by the core (`mpgpack.core.rows.rule_text`, the same words as the edge runner, the V2
tensor check and the data loader), with the feature's own context (unit, hard limits,
categories), so every message names the field, the rule and what is allowed. It never decides
validity itself.
"""
from __future__ import annotations

from typing import Any, Callable

from pydantic import ValidationError

from mpgpack.core import rows
from mpgpack.core.schema import Feature, Schema
from mpgpack.targets.api.schema import show

MAX_LISTED_ERRORS = 20


class ApiError(Exception):
    """A request the service refuses: HTTP status, one-line message, optional per-field list."""

    def __init__(self, status: int, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors

    def body(self) -> dict:
        out: dict[str, Any] = {"error": self.message}
        if self.errors:
            out["errors"] = self.errors
        return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# pydantic's error types for a feature value -> the core rule it broke
_LIMIT_KINDS = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")
_RULE_OF_KIND = {"multiple_of": rows.NOT_WHOLE, "finite_number": rows.NOT_FINITE,
                 "category": rows.UNKNOWN_CATEGORY, "missing": rows.MISSING}


def _feature_message(kind: str, feature: Feature, value: Any, schema: Schema) -> str | None:
    """The core's wording of the rule a feature's value broke, or None for a shape error."""
    if kind == "category_name":      # a name only the friendly API takes (schema._category_name)
        return (f"unknown value {show(value)} (allowed: {feature.categories_text()}; the code or "
                "the name, any case)")
    if feature.is_category and (kind in _LIMIT_KINDS or kind == "multiple_of"):
        rule = rows.UNKNOWN_CATEGORY    # as the row validator says it: a code is not a number
    elif kind in _LIMIT_KINDS:
        rule = rows.OUTSIDE_LIMITS
    elif kind == "float_type":
        rule = rows.MISSING if value is None else rows.NOT_A_NUMBER
    else:
        rule = _RULE_OF_KIND.get(kind)
    if rule is None:
        return None
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
    return rows.rule_text(rule, feature, number, schema, shown=show(value), missing_as="null")


def car_fields(rules: Schema) -> Callable[[tuple], list[str]]:
    """The field names allowed at a /predict location: the batch's, or a car's."""
    def allowed(loc: tuple) -> list[str]:
        return ["instances"] if loc[:1] == ("batch",) and len(loc) == 2 else rules.names
    return allowed


def describe(err: dict, rules: Schema, where: Callable[[tuple], str],
             allowed: Callable[[tuple], list[str]] | None = None) -> dict:
    """One pydantic error -> {"field", "rule", "message"}; `where` renders the location,
    `allowed` names the fields allowed where an unknown one was found."""
    loc = tuple(err["loc"])
    kind, value = err["type"], err.get("input")
    field = where(loc)
    feature = rules.by_name(loc[-1]) if loc and isinstance(loc[-1], str) else None
    message = None
    if feature is not None and kind != "extra_forbidden":
        message = _feature_message(kind, feature, value, rules)
    if message is None:
        ctx = err.get("ctx") or {}
        if kind == "extra_forbidden":
            names = (allowed or car_fields(rules))(loc)
            message = f"unknown field; allowed fields: {', '.join(names)}"
        elif kind == "too_short":
            message = f"must hold at least {ctx.get('min_length', 1)} item(s), got {ctx.get('actual_length', 0)}"
        elif kind == "too_long":
            message = (f"at most {ctx.get('max_length')} items per request, got "
                       f"{ctx.get('actual_length', 'more')}; split the request")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            message = f"must be a JSON object, got {_json_type(value)}"
        elif kind == "list_type":
            message = f"must be a JSON array, got {_json_type(value)}"
        elif kind == "float_type":
            message = f"must be a number, got {_json_type(value)} {show(value)}"
        elif kind == "string_type":
            message = f"must be a string, got {_json_type(value)}"
        elif kind in ("int_type", "int_from_float", "int_parsing"):
            message = f"must be an integer, got {_json_type(value)} {show(value)}"
        elif kind == "missing":
            message = "required field is missing"
        else:
            message = err["msg"][0].lower() + err["msg"][1:]
    return {"field": field, "rule": kind, "message": f"{field}: {message}"}


def body_location(loc: tuple) -> str:
    """('batch', 'instances', 3, 'horsepower') -> 'instances[3].horsepower'; tags dropped."""
    out = ""
    for part in loc:
        if part in ("car", "batch"):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def from_validation(exc: ValidationError, rules: Schema, status: int = 422,
                    where: Callable[[tuple], str] = body_location,
                    allowed: Callable[[tuple], list[str]] | None = None) -> ApiError:
    errs = exc.errors(include_url=False)
    if errs and errs[0]["type"] == "json_invalid":
        return ApiError(400, f"body is not valid JSON: {errs[0]['ctx']['error']}")
    listed = [describe(e, rules, where, allowed) for e in errs[:MAX_LISTED_ERRORS]]
    more = len(errs) - 1
    head = listed[0]["message"] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
    return ApiError(status, head, listed)
