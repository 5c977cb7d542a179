"""Client errors as one shape, `{"error": "...", "errors": [...]}`, with messages a person can act on.

pydantic reports *what* failed (type, location, input, constraint); this module words it with the
feature's own context from the manifest (unit, allowed range, categories), so every message names
the field, the rule and what is allowed. It never decides validity itself.
"""
from __future__ import annotations

from typing import Any, Callable

from pydantic import ValidationError

from mpgpack.targets.api.schema import FeatureRules, allowed_range, category_text, show

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


def _feature_message(kind: str, feature: dict, value: Any, err: dict, rules: FeatureRules) -> str | None:
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        cats = f"; categories {category_text(feature)}" if feature.get("categories") else ""
        return (f"{show(value)} is outside the allowed range {allowed_range(feature)} "
                f"(hard limit; values beyond it are refused{cats})")
    if kind == "multiple_of":
        return f"must be a whole number (integer), got {show(value)}"
    if kind == "finite_number":
        nullable = " (send null if unknown)" if feature.get("nullable") else ""
        return f"must be a finite number, got {show(value)}{nullable}"
    if kind == "float_type":
        if value is None:
            return "must be a number; this feature cannot be null"
        return f"must be a number, got {_json_type(value)} {show(value)}"
    if kind == "category":
        return f"must be one of {category_text(feature)}, got {show(value)}"
    if kind == "missing":
        return ("required field is missing" +
                (" (it may be null)" if feature.get("nullable") else ""))
    return None


def car_fields(rules: FeatureRules) -> Callable[[tuple], list[str]]:
    """The field names allowed at a /predict location: the batch's, or a car's."""
    def allowed(loc: tuple) -> list[str]:
        return ["instances"] if loc[:1] == ("batch",) and len(loc) == 2 else rules.names
    return allowed


def describe(err: dict, rules: FeatureRules, where: Callable[[tuple], str],
             allowed: Callable[[tuple], list[str]] | None = None) -> dict:
    """One pydantic error -> {"field", "rule", "message"}; `where` renders the location,
    `allowed` names the fields allowed where an unknown one was found."""
    loc = tuple(err["loc"])
    kind, value = err["type"], err.get("input")
    field = where(loc)
    feature = rules.by_name(loc[-1]) if loc and isinstance(loc[-1], str) else None
    message = None
    if feature is not None and kind != "extra_forbidden":
        message = _feature_message(kind, feature, value, err, rules)
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


def from_validation(exc: ValidationError, rules: FeatureRules, status: int = 422,
                    where: Callable[[tuple], str] = body_location,
                    allowed: Callable[[tuple], list[str]] | None = None) -> ApiError:
    errs = exc.errors(include_url=False)
    if errs and errs[0]["type"] == "json_invalid":
        return ApiError(400, f"body is not valid JSON: {errs[0]['ctx']['error']}")
    listed = [describe(e, rules, where, allowed) for e in errs[:MAX_LISTED_ERRORS]]
    more = len(errs) - 1
    head = listed[0]["message"] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
    return ApiError(status, head, listed)
