"""A small client for the MPG service: send a car (or a CSV of cars), print the predictions.

Standard library only, so it can be copied onto any machine with Python 3.9+ and run as
`python client.py --url http://127.0.0.1:8000 --car cylinders=4 displacement=97 ...`.
`mpgpack predict` is the same code.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import urllib.error
import urllib.request
import uuid
from typing import Iterable

MISSING = {"", "na", "nan", "null", "none", "?"}


class ServiceError(Exception):
    """The service refused the request or could not be reached; the message is one line."""


def _base(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/predict")] if url.endswith("/predict") else url


def _request(method: str, url: str, body: dict | None = None, timeout: float = 30,
             request_id: str | None = None) -> tuple[dict, dict]:
    data = json.dumps(body, allow_nan=False).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if request_id:
        req.add_header("X-Request-ID", request_id)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise ServiceError(f"{url} answered {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceError(f"cannot reach {url}: {reason}") from None


def metadata(url: str, timeout: float = 30) -> dict:
    return _request("GET", _base(url) + "/metadata", timeout=timeout)[0]


def predict(url: str, cars: list[dict], timeout: float = 30, request_id: str | None = None) -> dict:
    """POSTs cars to /predict (one request); returns the service's JSON answer."""
    body = cars[0] if len(cars) == 1 else {"instances": cars}
    return _request("POST", _base(url) + "/predict", body, timeout, request_id)[0]


def parse_value(text: str) -> float | int | None:
    text = text.strip()
    if text.lower() in MISSING:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ServiceError(f"{text!r} is not a number (use null for a missing value)") from None
    return int(value) if value.is_integer() else value


def parse_car(pairs: Iterable[str]) -> dict:
    """["cylinders=4", "horsepower=null", ...] -> {"cylinders": 4, "horsepower": None, ...}"""
    car = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ServiceError(f"--car expects name=value pairs, got {pair!r}")
        try:
            car[key.strip()] = parse_value(value)
        except ServiceError as exc:
            raise ServiceError(f"--car {key}: {exc}") from None
    return car


def read_csv(path: str, feature_names: list[str]) -> tuple[list[dict], list[str]]:
    """Cars from a CSV with a header; returns them and the columns that were not features."""
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [n for n in feature_names if n not in header]
            if missing:
                raise ServiceError(f"{path}: no column for {', '.join(missing)} (header: {', '.join(header)})")
            cars = []
            for line, row in enumerate(reader, start=2):
                try:
                    cars.append({n: parse_value(row[n] or "") for n in feature_names})
                except ServiceError as exc:
                    raise ServiceError(f"{path}, line {line}: {exc}") from None
    except OSError as exc:
        raise ServiceError(f"cannot read {path}: {exc.strerror}") from None
    if not cars:
        raise ServiceError(f"{path}: no rows below the header")
    return cars, [c for c in header if c not in feature_names]


def predict_many(url: str, cars: list[dict], batch: int, timeout: float = 30) -> list[dict]:
    """Predictions for any number of cars, in requests of at most `batch` cars."""
    out: list[dict] = []
    for start in range(0, len(cars), batch):
        answer = predict(url, cars[start:start + batch], timeout)
        out.extend(answer["predictions"])
    return out


def _answer(p: dict) -> tuple[str, str]:
    """(column title, value) of one prediction: a regressor's value under its target's name,
    or a classifier's class with its probability."""
    if "class" in p:
        return "class", f"{p['class']} ({p['probabilities'][p['class']]:.1%})"
    name = next(k for k in p if k != "warnings")
    return name, f"{p[name]:.2f}"


def format_table(predictions: list[dict]) -> str:
    answers = [_answer(p) for p in predictions]
    title = answers[0][0] if answers else "prediction"
    width = max([len(title), 7, *(len(v) for _, v in answers)])
    lines = [f"{'#':>5}  {title:>{width}}  warnings"]
    for i, (p, (_, value)) in enumerate(zip(predictions, answers), start=1):
        warn = "; ".join(w["message"] for w in p.get("warnings", []))
        lines.append(f"{i:>5}  {value:>{width}}  {warn}")
    return "\n".join(lines)


def run(url: str, car: list[list[str]] | None, csv_path: str | None, as_json: bool,
        timeout: float = 30, out=sys.stdout, err=sys.stderr) -> int:
    if csv_path:
        meta = metadata(url, timeout)
        names = [f["name"] for f in meta["schema"]["features"]]
        cars, ignored = read_csv(csv_path, names)
        if ignored:
            print(f"note: ignoring columns that are not model features: {', '.join(ignored)}", file=err)
        predictions = predict_many(url, cars, int(meta["limits"]["max_batch"]), timeout)
        answer = {"model_version": meta["model"]["version"], "predictions": predictions}
    else:
        cars = [parse_car(pairs) for pairs in car or []]
        answer = predict(url, cars, timeout, request_id=uuid.uuid4().hex)
    if as_json:
        print(json.dumps(answer, indent=2), file=out)
    else:
        print(format_table(answer["predictions"]), file=out)
        rid = f", request {answer['request_id']}" if "request_id" in answer else ""
        print(f"model {answer['model_version']}{rid}", file=out)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True,
                   help="the service's base URL, e.g. http://127.0.0.1:8000 (a /predict suffix is fine)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--car", nargs="+", action="append", metavar="NAME=VALUE",
                      help="one car as feature=value pairs (null for a missing horsepower); "
                           "repeat --car for several cars")
    what.add_argument("--csv", metavar="FILE",
                      help="a CSV with a header naming the features (other columns are ignored); "
                           "sent in batches of the service's max_batch")
    p.add_argument("--json", action="store_true", help="print the service's JSON answer")
    p.add_argument("--timeout", type=float, default=30, help="seconds per request (default 30)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="client.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args.url, args.car, args.csv, args.json, args.timeout)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
