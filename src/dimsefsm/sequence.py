"""A transcript (``-d`` output) drawn as a sequence diagram, SVG or HTML.

The transcript (:mod:`dimsefsm.trace`) already holds every step of every
association in protocol order; read as text it is a few hundred lines per
C-MOVE.  Drawn, each association is a pair of lifelines (this process and its
peer), PDUs and DIMSE messages are arrows between them, and the chart
transitions are notes on this side's lifeline, with the time of each row in
the margin.  Associations are placed side by side, so a C-MOVE SCP's
sub-association to the destination appears to the right of the C-MOVE that
caused it.

Several transcripts (one per process, e.g. the SCU's and the SCP's) can be
drawn together: an association that one file opens with ``A-ASSOCIATE-RQ
'A' -> 'B'`` out and another accepts with the same AE titles in is drawn once,
with each file's transitions on its own side.

Input lines are the CLI's log lines (``2026-12-05 09:02:40.423 D:
dimsefsm.trace: assoc#1 ...``, the timestamp optional, as
:func:`dimsefsm.debug_logger` writes them) or JSON lines with a ``message``
(the same text, optionally ``dimsefsm.trace:``-prefixed) and an optional
``time`` (ISO 8601 or seconds since the epoch).  Other lines are ignored.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from dimsefsm.ul.chart import STATES

_LOG_LINE = re.compile(
    r"^(?:(?P<time>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)\s+)?"
    r"(?:[A-Z]: )?dimsefsm\.trace: (?P<message>.*)$"
)
_TRANSITION = re.compile(r"^(?P<chart>\S+) (?P<name>.+): (?P<source>\S+) -> (?P<dest>\S+)$")
_RQ_TITLES = re.compile(r"A-ASSOCIATE-RQ ('.*?'|\".*?\") -> ('.*?'|\".*?\")")


@dataclass(frozen=True)
class Step:
    """One transcript line: a PDU or DIMSE message, a chart transition, or another event."""

    source: int  # which input file (0 for the first)
    association: str  # the label, e.g. "assoc#2"
    kind: str  # "pdu", "dimse", "transition" or "event"
    text: str
    time: datetime | None = None
    outgoing: bool = False  # pdu/dimse: sent by this side
    chart: str = ""  # transition: the chart's name
    states: tuple[str, str] = ("", "")  # transition: source and destination


def parse_message(message: str, source: int = 0, time: datetime | None = None) -> Step | None:
    """A step from one transcript message (``assoc#1 PDU out ...``); None if it is not one."""
    label, _, rest = message.strip().partition(" ")
    if not label or not rest:
        return None
    word, _, tail = rest.partition(" ")
    if word in ("PDU", "DIMSE"):
        direction, _, text = tail.partition(" ")
        if direction not in ("in", "out"):
            return None
        kind = "pdu" if word == "PDU" else "dimse"
        return Step(source, label, kind, text, time, outgoing=direction == "out")
    found = _TRANSITION.match(rest)
    if found:
        return Step(
            source,
            label,
            "transition",
            found["name"],
            time,
            chart=found["chart"],
            states=(found["source"], found["dest"]),
        )
    return Step(source, label, "event", rest, time)


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace(",", ".").replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def parse_lines(lines: Iterable[str], source: int = 0) -> list[Step]:
    """The steps of one transcript (log lines or JSON lines), in file order."""
    steps: list[Step] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line.lstrip().startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or not isinstance(record.get("message"), str):
                continue
            message = record["message"].removeprefix("dimsefsm.trace: ")
            time = _parse_time(record.get("time"))
        else:
            found = _LOG_LINE.match(line)
            if found is None:
                continue
            message = found["message"]
            time = _parse_time(found["time"])
        step = parse_message(message, source, time)
        if step is not None:
            steps.append(step)
    return steps


# -- who talks to whom ------------------------------------------------------------------
Side = tuple[int, str]  # (file, association label): one end of an association


@dataclass
class Lane:
    """One association: its sides as (file, label) pairs, the requestor's first once known.

    Two sides appear when both ends' transcripts are read: two files (the SCU's
    and the SCP's), or one process that ran both (a test, an application that
    is its own peer).
    """

    sides: list[Side] = field(default_factory=list)

    def left(self) -> Side:
        return self.sides[0]

    def right(self) -> Side | None:
        return self.sides[1] if len(self.sides) == 2 else None


def _associate_titles(step: Step) -> tuple[str, str] | None:
    found = _RQ_TITLES.search(step.text) if step.kind == "pdu" else None
    return (found[1], found[2]) if found else None


def lanes_of(steps: Sequence[Step]) -> tuple[list[Lane], dict[Side, int]]:
    """One lane per association, joining the two ends' views of one association.

    Two labelled associations are one when one sent ``A-ASSOCIATE-RQ 'A' -> 'B'``
    and the other received it (first unmatched one, in order of appearance).
    """
    request: dict[Side, tuple[str, str, bool]] = {}
    for step in steps:
        titles = _associate_titles(step)
        if titles is not None:
            request.setdefault((step.source, step.association), (*titles, step.outgoing))
    lanes: list[Lane] = []
    where: dict[Side, int] = {}
    unmatched: dict[tuple[str, str, bool], list[int]] = {}
    for step in steps:
        key = (step.source, step.association)
        if key in where:
            continue
        rq = request.get(key)
        if rq is not None:
            waiting = unmatched.get((rq[0], rq[1], not rq[2]), [])
            if waiting:
                index = waiting.pop(0)
                # The requestor's side is drawn on the left.
                lanes[index].sides.insert(0 if rq[2] else 1, key)
                where[key] = index
                continue
        where[key] = len(lanes)
        lanes.append(Lane([key]))
        if rq is not None:
            unmatched.setdefault(rq, []).append(where[key])
    return lanes, where


def _counted(step: Step) -> bool:
    return step.kind == "dimse" or (step.kind == "pdu" and not step.text.startswith("P-DATA"))


def merge(transcripts: Sequence[Sequence[Step]]) -> list[Step]:
    """Several processes' transcripts as one sequence: by time, never an effect before its cause.

    Log timestamps have millisecond resolution, so two processes' lines often
    share one; a message received is then placed after the same message sent
    (the n-th DIMSE message, or association/release/abort PDU, received on an
    association after the n-th sent by its peer), whatever the clocks say.
    """
    everything = [step for steps in transcripts for step in steps]
    lanes, where = lanes_of(everything)
    sent: dict[tuple[Side, str], int] = defaultdict(int)  # (by side, kind)
    received: dict[tuple[Side, str], int] = defaultdict(int)
    heads = [0] * len(transcripts)
    merged: list[Step] = []

    def ready(step: Step) -> bool:
        # P-DATA-TF is left out: one logged write may carry several PDUs; its
        # DIMSE messages are counted instead.
        if not _counted(step) or step.outgoing:
            return True
        key = (step.source, step.association)
        peers = [side for side in lanes[where[key]].sides if side != key]
        if not peers:
            return True
        return sent[(peers[0], step.kind)] > received[(key, step.kind)]

    def when(step: Step) -> float:
        return step.time.timestamp() if step.time else 0.0

    while len(merged) < len(everything):
        waiting = [
            (when(steps[heads[n]]), n)
            for n, steps in enumerate(transcripts)
            if heads[n] < len(steps)
        ]
        candidates = [c for c in waiting if ready(transcripts[c[1]][heads[c[1]]])] or waiting
        _, n = min(candidates)
        step = transcripts[n][heads[n]]
        heads[n] += 1
        merged.append(step)
        if _counted(step):
            key = (step.source, step.association)
            (sent if step.outgoing else received)[(key, step.kind)] += 1
    return merged


# -- drawing ---------------------------------------------------------------------------
_ROW = 22
_LANE = 300  # distance between the two lifelines of one association
_NOTE = 215  # room for the transition notes outside each lifeline
_GAP = 20  # between associations
_MARGIN = 145  # the time column
_TOP = 56
_CHARS = 44  # of a label; the whole text is in the tooltip
_COLOURS = {"pdu": "#222222", "dimse": "#1f5fbf", "abort": "#c0392b"}


def _short(text: str, limit: int = _CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _state_title(state: str) -> str:
    name = STATES.get(state)
    return f"{state} ({name})" if name else state


def _time_text(time: datetime | None, start: datetime | None) -> str:
    if time is None:
        return ""
    stamp = time.strftime("%H:%M:%S.") + f"{time.microsecond // 1000:03d}"
    if start is None:
        return stamp
    return f"{stamp} +{(time - start).total_seconds() * 1000:.0f} ms"


def _drawn_by_other_side(step: Step, lanes: Sequence[Lane], where: dict[Side, int]) -> bool:
    """A message received on an association whose sender's transcript is drawn too."""
    if step.kind not in ("pdu", "dimse") or step.outgoing:
        return False
    return len(lanes[where[(step.source, step.association)]].sides) == 2


def render_svg(steps: Sequence[Step], source_names: Sequence[str] = ("local",)) -> str:
    """The sequence diagram of ``steps`` as a standalone SVG document."""
    lanes, where = lanes_of(steps)
    # x of each lane's left and right lifeline; the requestor's side is on the left.
    xs: list[tuple[float, float]] = []
    pitch = _LANE + 2 * _NOTE + _GAP
    for n in range(len(lanes)):
        left = _MARGIN + _NOTE + n * pitch
        xs.append((left, left + _LANE))
    shown = [s for s in steps if not _drawn_by_other_side(s, lanes, where)]
    width = _MARGIN + max(1, len(lanes)) * pitch
    height = _TOP + _ROW * (len(shown) + 2)
    start = next((s.time for s in steps if s.time is not None), None)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
        'font-size="11">',
        "<title>dimsefsm association sequence</title>",
        '<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="context-stroke"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="{_TOP - 24}" font-weight="bold">time</text>',
    ]
    for n, lane in enumerate(lanes):
        first, second = lane.left(), lane.right()
        left_name = f"{source_names[first[0]]} {first[1]}"
        right_name = f"{source_names[second[0]]} {second[1]}" if second else "peer"
        for x, name in zip(xs[n], (left_name, right_name), strict=True):
            out.append(
                f'<rect x="{x - 70}" y="{_TOP - 40}" width="140" height="24" rx="4" '
                f'fill="#eef2f7" stroke="#556"/>'
                f'<text x="{x}" y="{_TOP - 24}" text-anchor="middle">{escape(_short(name, 22))}'
                "</text>"
                f'<line x1="{x}" y1="{_TOP - 16}" x2="{x}" y2="{height - 8}" stroke="#99a" '
                'stroke-dasharray="4 3"/>'
            )
    for row, step in enumerate(shown, start=1):
        y = _TOP + row * _ROW
        key = (step.source, step.association)
        own_x, other_x = xs[where[key]]
        if key != lanes[where[key]].left():
            own_x, other_x = other_x, own_x
        stamp = _time_text(step.time, start)
        if stamp:
            out.append(f'<text x="10" y="{y + 4}" fill="#555">{stamp}</text>')
        full = f"{step.association} {step.chart + ' ' if step.chart else ''}{step.text}"
        if step.kind in ("pdu", "dimse"):
            colour = _COLOURS["abort" if "ABORT" in step.text else step.kind]
            x1, x2 = (own_x, other_x) if step.outgoing else (other_x, own_x)
            dash = ' stroke-dasharray="6 3"' if step.kind == "dimse" else ""
            label = step.text.split(",")[0] if step.kind == "dimse" else step.text
            out.append(
                f'<g class="{step.kind}"><title>{escape(full)}</title>'
                f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" '
                f'stroke-width="1.4" marker-end="url(#head)"{dash}/>'
                f'<text x="{(x1 + x2) / 2}" y="{y - 4}" text-anchor="middle" fill="{colour}">'
                f"{escape(_short(label))}</text></g>"
            )
        elif step.kind == "transition":
            before, after = step.states
            text = f"{step.chart}: {before} → {after}"
            tooltip = f"{full}: {_state_title(before)} -> {_state_title(after)}"
            anchor, dx = ("end", -8) if own_x < other_x else ("start", 8)
            out.append(
                f'<g class="transition"><title>{escape(tooltip)}</title>'
                f'<circle cx="{own_x}" cy="{y}" r="3.5" fill="#e67e22"/>'
                f'<text x="{own_x + dx}" y="{y + 4}" text-anchor="{anchor}" fill="#8a4b0f" '
                f'font-size="10">{escape(_short(text, 38))}</text></g>'
            )
        else:
            anchor, dx = ("end", -8) if own_x < other_x else ("start", 8)
            out.append(
                f'<g class="event"><title>{escape(full)}</title>'
                f'<rect x="{own_x - 3}" y="{y - 3}" width="6" height="6" fill="#777"/>'
                f'<text x="{own_x + dx}" y="{y + 4}" text-anchor="{anchor}" fill="#555" '
                f'font-style="italic" font-size="10">{escape(_short(step.text, 38))}</text></g>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_html(steps: Sequence[Step], source_names: Sequence[str] = ("local",)) -> str:
    """The SVG in a page of its own, with a legend (hover a row for its whole line)."""
    legend = (
        "<p>Solid arrows: PDUs (red: A-ABORT); dashed blue arrows: DIMSE messages; "
        "orange dots: chart transitions on the side that made them; grey squares: other "
        "events. Hover an element for the transcript line and the upper-layer state names.</p>"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        "<title>dimsefsm association sequence</title></head>\n<body>\n"
        f"{legend}\n{render_svg(steps, source_names)}</body></html>\n"
    )
