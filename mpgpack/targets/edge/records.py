"""Input text for the edge runner: bytes -> lines -> records, each with its first line number.

`LineReader` turns a file descriptor into blocks of decoded lines: any line ending (LF, CRLF,
CR alone), a UTF-8 BOM dropped, a line that is not UTF-8 or is longer than `RECORD_LIMIT`
marked bad (its bytes are never held beyond the limit). `CsvRecords` groups those lines into
CSV records the way Python's csv module reads them (a quoted field may span lines), and hands
on only complete records, so a record never splits between chunks and its prediction stays
beside it. JSON lines are one record per line.

A record that cannot be read (over the limit, not UTF-8, a quote never closed, not CSV) is an
error for the line its record starts on; reading then resumes on the line after that one, so
one bad quote costs its own record, not the rest of the file. Standard library only.
"""
from __future__ import annotations

import csv
import itertools
import os
import re
from dataclasses import dataclass, field

BLOCK_BYTES = 1 << 20               # read size: ~25,000 CSV rows per chunk
RECORD_LIMIT = 64 * 1024            # characters one record (or JSON line) may hold
BOM = b"\xef\xbb\xbf"
TOO_LONG = f"longer than {RECORD_LIMIT} characters (the most one row may hold); skipped"
UNTERMINATED = ("a quoted field opened on this line is never closed (unterminated '\"'); "
                "reading resumes on the next line")
_SURROGATE = re.compile("[\udc80-\udcff]")      # an undecodable byte, kept by surrogateescape


@dataclass
class Lines:
    """Consecutive lines of the input, without their line endings."""
    first: int                                          # line number of lines[0]
    lines: list[str]
    bad: dict[int, str] = field(default_factory=dict)   # index -> why the line is unusable


@dataclass
class Records:
    """Complete records of one chunk, in input order."""
    nums: list[int]                     # the line number each record starts on
    raw: list[str]                      # each record's text (its lines joined by "\n")
    # each record's fields; None when every record is one line without quotes (split on ",")
    fields: list[list[str]] | None
    errors: list[tuple[int, str]]       # (line number, message) for records that were refused
    spans: dict[int, int] = field(default_factory=dict)   # index -> last line, multi-line only


# -- bytes -> lines -------------------------------------------------------------------------
class LineReader:
    """Yields `Lines` blocks as the input arrives (os.read returns what is there, so a pipe fed
    one line at a time gets each line at once). Memory: one block plus at most one
    over-long line's first 4 x RECORD_LIMIT bytes (a character is at most 4 bytes)."""

    def __init__(self, fd: int, block_bytes: int = BLOCK_BYTES, limit: int = RECORD_LIMIT):
        self.fd, self.block_bytes, self.limit = fd, block_bytes, limit
        self.next_line = 1
        self._dropping = False          # the last line of the tail grew too long: discarded

    def __iter__(self):
        head, tail = b"", bytearray()
        while True:
            data = os.read(self.fd, self.block_bytes)
            eof = not data
            if head is not None:                # the first bytes: drop a BOM
                head += data
                if not eof and len(head) < len(BOM) and BOM.startswith(head):
                    continue                    # a BOM split across reads: wait for the rest
                data, head = head[len(BOM):] if head.startswith(BOM) else head, None
            cut = _complete_end(tail, data, eof)
            if cut == 0 and not eof:            # no line has ended yet: keep the bytes
                tail += data
            else:
                buf = bytes(tail) + data
                block, tail = self._lines(buf[:cut], eof), bytearray(buf[cut:])
                if block.lines:
                    yield block
            if eof:
                return
            if len(tail) > 4 * self.limit:      # surely over the limit: keep no more of it
                tail, self._dropping = bytearray(b"\r" if tail.endswith(b"\r") else b""), True

    def _lines(self, raw: bytes, eof: bool) -> Lines:
        block = Lines(self.next_line, [])
        if not raw:
            if self._dropping and eof:          # the file ended inside the over-long line
                block.lines, block.bad[0] = [""], TOO_LONG
            return self._advance(block)
        try:
            text, utf8 = raw.decode("utf-8"), True
        except UnicodeDecodeError:              # keep the bytes (as lone surrogates) to say so
            text, utf8 = raw.decode("utf-8", errors="surrogateescape"), False
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        block.lines = (text[:-1] if text.endswith("\n") else text).split("\n")
        if self._dropping:                      # the rest of a line already too long
            block.lines[0], block.bad[0], self._dropping = "", TOO_LONG, False
        if not utf8 or len(text) > self.limit:  # else no line can be bad: skip the walk
            for i, line in enumerate(block.lines):
                if len(line) > self.limit:
                    block.lines[i], block.bad[i] = "", TOO_LONG
                elif not utf8 and _SURROGATE.search(line):
                    block.bad[i] = _not_utf8(line)
        return self._advance(block)

    def _advance(self, block: Lines) -> Lines:
        self.next_line += len(block.lines)
        return block


def _complete_end(tail: bytearray, data: bytes, eof: bool) -> int:
    """Where the complete lines of tail + data end (0: none yet). `tail` holds no line end but
    perhaps a last CR, so only `data` and that one byte are searched: a line arriving a byte at
    a time costs linear time. A CR as the very last byte may be the first half of a CRLF whose
    LF has not arrived yet, so it waits."""
    if eof:
        return len(tail) + len(data)
    probe = bytes(tail[-1:]) + data
    search = probe[:-1] if probe.endswith(b"\r") else probe
    end = max(search.rfind(b"\n"), search.rfind(b"\r")) + 1
    return len(tail) - len(tail[-1:]) + end if end else 0


def _not_utf8(line: str) -> str:
    at = _SURROGATE.search(line)
    byte = ord(at.group()) - 0xDC00
    return f"not UTF-8 text (byte 0x{byte:02x} at column {at.start() + 1})"


# -- lines -> records -----------------------------------------------------------------------
def json_records(block: Lines) -> Records:
    """JSON lines: a record per non-blank line; bad lines become errors."""
    nums, raw, errors = [], [], []
    for i, line in enumerate(block.lines):
        if i in block.bad:
            errors.append((block.first + i, block.bad[i]))
        elif line.strip():
            nums.append(block.first + i)
            raw.append(line)
    return Records(nums, raw, None, errors)


_END_OF_DATA = "unexpected end of data"     # csv (strict): the input ended inside quotes


class CsvRecords:
    """Lines -> complete CSV records. A record still open at the end of a block (a quoted
    field running on) waits for the next block; at the end of the input it is an error."""

    def __init__(self, limit: int = RECORD_LIMIT):
        self.limit = limit
        self._held = Lines(1, [])       # the start of a record that is not complete yet

    def feed(self, block: Lines, eof: bool = False) -> Records:
        held = self._held
        if held.lines:
            block = Lines(held.first, held.lines + block.lines,
                          {**held.bad, **{len(held.lines) + i: m for i, m in block.bad.items()}})
        self._held = Lines(block.first + len(block.lines), [])
        if not any('"' in line for line in block.lines):
            return _unquoted(block)
        out, at = Records([], [], [], []), 0
        while at is not None and at < len(block.lines):
            at = self._read_from(block, at, out, eof)
        return out

    def finish(self) -> Records:
        """The end of the input: a record still open is unterminated."""
        return self.feed(Lines(self._held.first + len(self._held.lines), []), eof=True)

    def _read_from(self, block: Lines, at: int, out: Records, eof: bool) -> int | None:
        """Reads records from line `at` on, with one csv reader (the C loop over the lines;
        `line_num` says where each record ends). Returns where to resume after a record that
        failed (its first line + 1), or None when the lines are used up."""
        lines, start = block.lines, at
        # strict: a quote that closes a field must be followed by a comma or a line end,
        # which catches most quotes left open (they close on a later row's quote)
        reader = csv.reader(itertools.islice(lines, at, None), strict=True)
        while True:
            try:
                fields, problem = next(reader), None
            except StopIteration:
                return None
            except csv.Error as exc:
                fields, problem = None, str(exc)
            end = at + reader.line_num
            if problem is None and end - start == 1 and not block.bad \
                    and len(lines[start]) <= self.limit:    # the usual record, kept quickly
                if fields:
                    out.nums.append(block.first + start)
                    out.raw.append(lines[start])
                    out.fields.append(fields)
                start = end
                continue
            if self._too_long(block, start, end):
                problem = TOO_LONG
            elif problem is not None and problem.startswith(_END_OF_DATA) and end >= len(lines):
                if not eof:                     # open at the end of the block: wait
                    self._held = Lines(block.first + start, lines[start:],
                                       {i - start: m for i, m in block.bad.items() if i >= start})
                    return None
                problem = UNTERMINATED
            elif problem is not None:
                problem = f"not valid CSV ({problem})"
            if problem is not None:             # its first line only: resume on the next
                out.errors.append((block.first + start, problem))
                return start + 1
            _add(out, block, start, end, fields)
            start = end

    def _too_long(self, block: Lines, start: int, end: int) -> bool:
        lines = block.lines
        if block.bad and any(block.bad.get(i) == TOO_LONG for i in range(start, end)):
            return True
        if end - start == 1:
            return len(lines[start]) > self.limit
        return sum(map(len, lines[start:end])) + end - start - 1 > self.limit


def _add(out: Records, block: Lines, start: int, end: int, fields: list[str]) -> None:
    bad = block.bad and next((block.bad[i] for i in range(start, end) if i in block.bad), None)
    if bad:
        out.errors.append((block.first + start, bad))
    elif fields:                                # a blank line holds no record
        if end - start > 1:
            out.spans[len(out.nums)] = block.first + end - 1
        out.nums.append(block.first + start)
        out.raw.append(block.lines[start] if end - start == 1 else
                       "\n".join(block.lines[start:end]))
        out.fields.append(fields)


def _unquoted(block: Lines) -> Records:
    """A block without a quote: every line is a record (blank ones included; the parser skips
    them), read by splitting on commas, as csv would."""
    if not block.bad:
        return Records(list(range(block.first, block.first + len(block.lines))), block.lines,
                       None, [])
    keep = [i for i in range(len(block.lines)) if i not in block.bad]
    return Records([block.first + i for i in keep], [block.lines[i] for i in keep], None,
                   [(block.first + i, m) for i, m in sorted(block.bad.items())])
