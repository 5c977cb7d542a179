"""`mpg-edge`: the device runner. Predicts with LiteRT from CSV or JSON lines, offline, for
whatever model the bundle's manifest describes (a regressor, or a classifier).

    mpg-edge predict --input rows.csv [--output out.csv]    # CSV in, CSV out (input + prediction)
    mpg-edge predict < rows.jsonl > predictions.jsonl       # JSON lines on stdin/stdout
    mpg-edge verify                                          # sha256s + golden vectors
    mpg-edge drain INBOX OUTBOX                              # what the systemd unit runs
    mpg-edge follow URL --prefix DIR                         # stay on the registry's version
    mpg-edge rollback | status --prefix DIR                  # the previous version; the state

Exit codes: 0 every row predicted; 3 some rows were bad (each reported on stderr with its line
number and skipped); 1 the run could not start (bad bundle, tampered model, bad header); 2 usage.

Runs on the device with numpy and ai-edge-litert only. Cold start matters (a process per
request or per file is the cheap way to run on a Pi), so everything heavy is imported late
and nothing else is imported at all.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_USER_ERROR, EXIT_ROWS_FAILED = 0, 1, 3
EDGE_ARTIFACTS = ["tflite_float32", "golden"]   # what an edge bundle ships of the full bundle
# Benchmark-only switch: run the same runner on full TensorFlow's tf.lite.Interpreter.
INTERPRETER_ENV = "MPG_EDGE_INTERPRETER"
BUNDLE_ENV = "MPG_EDGE_BUNDLE"
TRUST_ENV = "MPG_EDGE_TRUST"


def default_bundle() -> str | None:
    """$MPG_EDGE_BUNDLE, else the bundle installed beside the venv (PREFIX/venv, PREFIX/bundle),
    else None (open_bundle then looks in ./dist, as in the repository)."""
    if os.environ.get(BUNDLE_ENV):
        return os.environ[BUNDLE_ENV]
    beside = Path(sys.prefix).parent / "bundle"
    return str(beside) if (beside / "manifest.json").is_file() else None


def bundle_arg(args) -> str | None:
    """--prefix DIR: the version DIR/current names (kept by `mpg-edge follow`); else --bundle."""
    if getattr(args, "prefix", None):
        from mpgpack.targets.edge.device_store import DeviceStore
        return str(DeviceStore(args.prefix).serving_path())
    return args.bundle


def default_trust() -> str | None:
    """$MPG_EDGE_TRUST, else the public key install.sh put beside the venv (PREFIX/trust.pub),
    else None: signatures are then not checked."""
    from mpgpack.core.signing import DEVICE_KEY_FILE
    if os.environ.get(TRUST_ENV):
        return os.environ[TRUST_ENV]
    beside = Path(sys.prefix).parent / DEVICE_KEY_FILE
    return str(beside) if beside.is_file() else None


def open_model(bundle_path: str | None, trust: str | None = None):
    """(bundle, runner) for the bundle at bundle_path (default: the device's own bundle)."""
    from mpgpack.core.bundle import open_bundle
    bundle = open_bundle(bundle_path if bundle_path is not None else default_bundle())
    return bundle, runner_for(bundle, trust)


def runner_for(bundle, trust: str | None = None):
    """The warmed-up runner of an opened bundle, with the manifest's signature checked first
    when a trusted key is given, then model.tflite checked against the manifest's sha256:
    LiteRT never opens a model the checks did not pass."""
    if trust is not None:
        from mpgpack.core.signing import verify_bundle_signature
        verify_bundle_signature(bundle.path, trust, bundle.manifest)   # raises UserError
    model = bundle.artifact("tflite_float32")        # raises UserError if tampered
    if os.environ.get(INTERPRETER_ENV) == "tensorflow":
        runner = _full_tensorflow_runner(model)
    else:
        from mpgpack.core.runtimes import LiteRTRunner
        runner = LiteRTRunner(model)
    _warm_up_quietly(runner, len(bundle.features))
    return runner


def _warm_up_quietly(runner, width: int) -> None:
    """Runs one row so the interpreter plans its tensors now, with native stderr muted.

    LiteRT's C++ logs "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to file
    descriptor 2 on the first run; stderr is where the runner reports bad rows, so that line
    would sit among them. A real failure still raises, with its message, after fd 2 is back.
    """
    import numpy as np
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        runner.predict(np.zeros((1, width), dtype=np.float32))
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _full_tensorflow_runner(model: Path):
    """The same runner on tf.lite.Interpreter (TensorFlow is never on the device; the cold-start
    benchmark uses this from the dev venv to show what LiteRT saves)."""
    import tensorflow as tf
    from mpgpack.core.runtimes import LiteRTRunner

    class FullTensorFlowRunner(LiteRTRunner):
        runtime = "tensorflow"

        def __init__(self, path: Path, threads: int = 1):
            self._interp = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
            self._in = self._interp.get_input_details()[0]["index"]
            self._out = self._interp.get_output_details()[0]["index"]
            self._rows = -1

        @property
        def version(self) -> str:
            return tf.__version__

    return FullTensorFlowRunner(model)


# -- reading and writing --------------------------------------------------------------------
class Stats:
    def __init__(self):
        self.good = self.bad = 0
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def predict_stream(runner, schema, fd: int, out, err, fmt: str, observe=None,
                   block_bytes: int | None = None) -> Stats:
    """Reads rows from fd, writes predictions to `out` (text), reports bad rows on `err`.
    observe(X, y, seconds), when given, sees every predicted chunk (the prediction log).
    `block_bytes`: the read size (default ~1 MiB; the reader's tests make chunks tiny)."""
    from mpgpack.targets.edge.outputs import OutputWriter
    from mpgpack.targets.edge.rows import WarningCounts, JsonLinesParser
    stats, warnings, writer = Stats(), WarningCounts(), OutputWriter(schema)
    parser = JsonLinesParser(schema) if fmt == "jsonl" else None
    for records in _records(fd, fmt, block_bytes):
        if parser is None:                  # CSV: the first record is the header
            parser = _csv_header(schema, records, out, err, writer)
            if parser is None:
                continue
        chunk = parser.parse(records)
        for line, message in chunk.errors:
            err.write(f"line {line}: {message}\n")
        stats.bad += len(chunk.errors)
        if len(chunk.X):
            _write_predictions(runner, schema, chunk, out, fmt, warnings, writer, observe)
            stats.good += len(chunk.X)
        out.flush()
    if parser is None:
        from mpgpack.core.errors import UserError
        raise UserError("the CSV input is empty: expected a header line naming the features")
    if fmt == "jsonl" and parser.ignored_keys:
        err.write(f"note: keys {', '.join(sorted(parser.ignored_keys))} are not features; "
                  f"ignored\n")
    for name, count in warnings.counts.items():
        lo, hi = schema.by_name(name).training_range
        err.write(f"warning: {count} row(s) have {name} outside the training range {lo:g} to "
                  f"{hi:g} (lines {', '.join(map(str, warnings.first_lines[name]))}"
                  f"{', …' if count > 5 else ''}); predicted, but the model saw no such rows\n")
    return stats


def _records(fd: int, fmt: str, block_bytes: int | None):
    """The input as `Records` chunks: complete records only, with their first line numbers."""
    from mpgpack.targets.edge.records import BLOCK_BYTES, CsvRecords, LineReader, json_records
    lines = LineReader(fd, block_bytes or BLOCK_BYTES)
    if fmt == "jsonl":
        yield from map(json_records, lines)
        return
    csv_records = CsvRecords()
    for block in lines:
        yield csv_records.feed(block)
    yield csv_records.finish()


def _csv_header(schema, records, out, err, writer):
    """The parser the header (the first record) makes, with the header taken off `records`;
    None while no record has come yet. A header that cannot be read stops the run."""
    from mpgpack.core.errors import UserError
    from mpgpack.targets.edge.rows import CsvParser
    first = next((k for k, r in enumerate(records.raw) if r.strip()), None)
    if records.errors and (first is None or records.errors[0][0] < records.nums[first]):
        line, message = records.errors[0]
        raise UserError(f"the CSV header (line {line}) cannot be read: {message}")
    if first is None:
        return None
    fields = records.raw[first].split(",") if records.fields is None else records.fields[first]
    parser = CsvParser(schema, fields)
    if parser.extra:
        err.write(f"note: columns {', '.join(parser.extra)} are not features; "
                  f"they are copied to the output, not used\n")
    out.write(f"{records.raw[first]},{writer.header()}\n")
    del records.nums[:first + 1], records.raw[:first + 1]
    if records.fields is not None:
        del records.fields[:first + 1]
    records.spans = {k - first - 1: v for k, v in records.spans.items() if k > first}
    return parser


def _write_predictions(runner, schema, chunk, out, fmt: str, warnings, writer,
                       observe=None) -> None:
    from mpgpack.targets.edge.rows import count_outside_training
    started = time.perf_counter()
    y = runner.run(chunk.X)                          # [N, K]: the whole output tensor
    if observe is not None:
        observe(chunk.X, y, time.perf_counter() - started)
    count_outside_training(schema, chunk.X, chunk.lines, warnings)
    if fmt == "jsonl":
        out.write(writer.json_rows(chunk.lines.tolist(), y))
    else:
        out.write(writer.csv_rows(chunk.raw, y))


def _format_of(path: str | None, given: str | None) -> str:
    if given:
        return given
    if path is None:
        return "jsonl"
    return "jsonl" if Path(path).suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"


def _summary(stats: Stats, err) -> None:
    total = stats.good + stats.bad
    rate = stats.good / stats.seconds if stats.seconds > 0 else 0.0
    text = f"mpg-edge: predicted {stats.good} of {total} rows in {stats.seconds:.2f} s ({rate:,.0f} rows/s)"
    if stats.bad:
        text += f"; {stats.bad} bad row(s) skipped, each reported above"
    err.write(text + "\n")


# -- commands -------------------------------------------------------------------------------
def cmd_predict(args) -> int:
    from mpgpack.core.errors import UserError
    from mpgpack.core.schema import Schema
    fmt = _format_of(args.input, args.format)
    bundle, runner = open_model(bundle_arg(args), args.trust)
    schema = Schema.from_manifest(bundle.manifest)
    try:
        fd = os.open(args.input, os.O_RDONLY) if args.input else sys.stdin.fileno()
    except OSError as exc:
        raise UserError(f"cannot read --input {args.input}: {exc.strerror}") from None
    log = _prediction_log(args.prediction_log, bundle, args.input)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        stats = predict_stream(runner, schema, fd, out, sys.stderr, fmt,
                               observe=log and log.observe)
    finally:
        if args.output:
            out.close()
        if log:
            log.close()
    if args.trust is None and not args.quiet:     # beside the summary: an error stays one line
        from mpgpack.core.signing import UNVERIFIED
        print(f"mpg-edge: {UNVERIFIED}", file=sys.stderr)
    if not args.quiet or stats.bad:
        _summary(stats, sys.stderr)
    return EXIT_ROWS_FAILED if stats.bad else EXIT_OK


def _prediction_log(path: str | None, bundle, source: str | None):
    """The API's prediction log (core.predlog) for `predict --prediction-log`, or None."""
    if not path:
        return None
    from mpgpack.core.predlog import PredictionLog
    request_id = f"mpg-edge:{Path(source).name if source else 'stdin'}"   # the API: one per request

    class EdgeLog(PredictionLog):
        def observe(self, X, y, seconds: float) -> None:
            self.record(X, y, bundle.version, request_id, seconds * 1000.0)

        def close(self, timeout: float = 5.0) -> None:
            super().close(timeout)
            if self.dropped:
                sys.stderr.write(f"mpg-edge: prediction log {self.path}: {self.dropped} "
                                 f"record(s) not written ({self.last_error})\n")

    return EdgeLog(path, [f["name"] for f in bundle.features])


def cmd_verify(args) -> int:
    import platform
    import numpy as np
    from mpgpack.core.signing import trust_line
    from mpgpack.targets.edge.follow import error_unit, golden_error, golden_passed
    bundle, runner = open_model(bundle_arg(args))
    signature = trust_line(bundle.path, args.trust, bundle.manifest)   # raises if refused
    checked = bundle.verify(EDGE_ARTIFACTS)
    code = _verify_installed_code()
    err, tolerance = golden_error(bundle, runner)
    ok = golden_passed(err, tolerance)
    built = bundle.manifest.get("parity", {}).get("tflite_float32", {}).get("max_abs_error")
    print(f"bundle mpg-{bundle.version} at {bundle.path}")
    print(signature)
    print(f"sha256: {', '.join(bundle.manifest['artifacts'][n]['path'] for n in checked)} match the "
          f"manifest{'; ' + code if code else ''}")
    print(f"runtime: {runner.runtime} {runner.version}, numpy {np.__version__}, "
          f"python {platform.python_version()} on {platform.machine()}")
    classes = ("" if "class_agreement" not in err else
               f", class agreement {err['class_agreement']:.2%} "
               f"({err['decided_disagreements']} rows of another class where the reference "
               "has no tie)")
    print(f"golden vectors: {err['rows']} rows, max abs error {err['max_abs_error']:.3g} "
          f"{error_unit(bundle)}, mean {err['mean_abs_error']:.3g} (tolerance {tolerance:g}"
          + (f"; at build time {built:.3g}" if built is not None else "") + f"){classes}")
    print("verify: OK" if ok else "verify: FAILED (predictions differ from the reference)")
    return EXIT_OK if ok else EXIT_USER_ERROR


def _verify_installed_code() -> str:
    """Checks the runner's own installed files against the hashes pip recorded (when installed
    from the edge bundle's wheel; in the repository there is nothing to check)."""
    import base64
    import hashlib
    from importlib import metadata
    from mpgpack.core.errors import UserError
    try:
        dist = metadata.distribution("mpg-edge")
    except metadata.PackageNotFoundError:
        return ""
    checked = 0
    for f in dist.files or []:
        if f.hash is None or f.hash.mode != "sha256":
            continue                        # RECORD itself, compiled .pyc files
        digest = base64.urlsafe_b64encode(hashlib.sha256(f.read_binary()).digest()).rstrip(b"=")
        if digest.decode() != f.hash.value:
            raise UserError(f"installed runner file {f} does not match its sha256 in the "
                            f"wheel's RECORD; reinstall from the edge bundle")
        checked += 1
    return f"{checked} runner files match their install record"


def cmd_drain(args) -> int:
    """Predicts every file waiting in INBOX, then moves it to OUTBOX beside its results.

    Run by the systemd path unit whenever INBOX is not empty. Every file leaves the inbox
    (a refused one too, with its reason), so the unit never re-triggers on the same file.
    Writers should create a file elsewhere on the same disk and rename it into INBOX.
    """
    from mpgpack.core.errors import UserError
    from mpgpack.core.schema import Schema
    inbox, outbox = Path(args.inbox), Path(args.outbox)
    outbox.mkdir(parents=True, exist_ok=True)
    bundle, runner = open_model(bundle_arg(args))
    schema = Schema.from_manifest(bundle.manifest)
    status = EXIT_OK
    for src in sorted(p for p in inbox.iterdir() if p.is_file()):
        fmt = _format_of(str(src), None)
        result = outbox / f"{src.stem}.predictions.{'jsonl' if fmt == 'jsonl' else 'csv'}"
        report = outbox / f"{src.stem}.errors.txt"
        tmp = result.with_name("." + result.name)
        with open(report, "w", encoding="utf-8") as err:
            try:
                fd = os.open(src, os.O_RDONLY)
                try:
                    with open(tmp, "w", encoding="utf-8") as out:
                        stats = predict_stream(runner, schema, fd, out, err, fmt)
                finally:
                    os.close(fd)
                _summary(stats, err)
                tmp.replace(result)
                bad, done = stats.bad, f"{stats.good} rows -> {result.name}"
            except UserError as exc:           # a whole file is unusable: say so, move it on
                err.write(f"error: {exc}\n")
                tmp.unlink(missing_ok=True)
                bad, done = 1, "refused"
        if bad:
            done += f", problems in {report.name}"
        else:
            report.unlink()
        src.replace(outbox / src.name)         # the inbox empties, so the path unit rests
        print(f"{src.name}: {done}")
        status = max(status, EXIT_ROWS_FAILED if bad else EXIT_OK)
    return status


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mpg-edge", description="Predict with the bundle's model on this device with "
        "LiteRT, offline (a regressor's value, or a classifier's class and probabilities). "
        "Exit codes: 0 ok, 3 some rows were bad (reported on stderr and "
        "skipped), 1 could not run.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bundle_help = (f"bundle folder (default: ${BUNDLE_ENV}, else the bundle installed beside "
                   f"this venv, else ./dist)")
    prefix_help = ("the device's model folder kept by `mpg-edge follow` (serve what its "
                   "`current` names; default for follow, rollback, status: $MPG_EDGE_PREFIX, "
                   "else /var/lib/mpg-edge/model)")
    trust_help = (f"refuse a bundle not signed by this Ed25519 public key (default: "
                  f"${TRUST_ENV}, else the trust.pub installed beside this venv, else the "
                  f"signature is not checked)")

    p = sub.add_parser("predict", help="predict from CSV or JSON lines",
                       description="Predict each row. CSV: a header naming the model's "
                       "features (any order; extra columns copied through; the bundle's "
                       "manifest lists them, and a header missing one is refused naming it); an empty cell or '?' means "
                       "missing, where the feature may be missing; a category by its code or "
                       "its label (any case). JSON lines: an object per line with the feature "
                       "names as keys (null = missing), or an array in feature order. "
                       "Bad rows are reported on stderr with their line number and skipped.")
    p.add_argument("--input", help="CSV or .jsonl file (default: JSON lines from stdin)")
    p.add_argument("--output", help="output file (default: stdout); CSV input gives the input "
                   "rows with a column named after the target (a classifier's class, then one "
                   "p_<label> column per class probability); JSON lines give {\"line\": n, "
                   "\"<target>\": x} (a classifier's adds \"probabilities\": {label: p})")
    p.add_argument("--format", choices=["csv", "jsonl"],
                   help="input format (default: from the --input suffix; stdin: jsonl)")
    p.add_argument("--bundle", help=bundle_help)
    p.add_argument("--quiet", action="store_true", help="no summary line unless rows failed")
    p.add_argument("--prefix", help=prefix_help)
    p.add_argument("--prediction-log", metavar="PATH", help="append one JSON line per predicted "
                   "row, as the API writes (read by `mpg-edge status` and `mpgpack monitor`)")
    p.add_argument("--trust", metavar="KEY.pub", help=trust_help)
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("verify", help="check sha256s and the golden vectors on this device",
                       description="Re-hash model.tflite and golden.json against the manifest "
                       "(and the runner's installed files against their install record), "
                       "predict the golden vectors and print the max abs error against the "
                       "reference. Exit 0 only if everything matches and is within tolerance.")
    p.add_argument("--bundle", help=bundle_help)
    p.add_argument("--prefix", help=prefix_help)
    p.add_argument("--trust", metavar="KEY.pub", help=trust_help)
    p.set_defaults(run=cmd_verify)

    p = sub.add_parser("drain", help="predict every file in INBOX, move it to OUTBOX (for systemd)",
                       description=cmd_drain.__doc__.split("\n\n")[0])
    p.add_argument("inbox")
    p.add_argument("outbox")
    p.add_argument("--bundle", help=bundle_help)
    p.add_argument("--prefix", help=prefix_help)
    p.set_defaults(run=cmd_drain)

    from mpgpack.targets.edge import follow, status
    follow.register(sub, prefix_help)
    status.register(sub, prefix_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if "trust" in args and args.trust is None:     # predict, verify, follow: the default key
        args.trust = default_trust()
    from mpgpack.core.errors import UserError
    try:
        return int(args.run(args) or 0)
    except UserError as exc:
        print(f"mpg-edge {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:                  # `mpg-edge predict ... | head`: not an error
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
