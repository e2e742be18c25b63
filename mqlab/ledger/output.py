"""Exactly-once, judged where Kafka keeps it: the output topic of the ``txn`` mode's stage.

The stage (``mqlab_services.adapters.kafka_txn``) reads each input record, writes its result to
the output topic and commits the input offset in one transaction. Kafka's exactly-once is a
promise about that topic: read with ``read_committed``, every acked input id is there once,
and nothing of an aborted transaction is visible. The stage's receipts are written before the
commit, outside the transaction, so they can repeat when a transaction aborts and the poll is
read again: they are shown, and the mode is judged on the output topic instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import receipts

SAMPLE = 5


@dataclass
class OutputRead:
    """The output topic, read ``read_committed``, against the run's acked ids."""

    read: bool
    topic: str = ""
    acked: int = 0
    once: int = 0  # acked ids that are in the output exactly once
    missing: int = 0  # acked ids that are not in it
    more_than_once: int = 0  # ids that are in it more than once
    missing_ids: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def exactly_once(self) -> bool:
        return self.read and self.missing == 0 and self.more_than_once == 0


def acked_ids(directory: Path) -> set[str]:
    """Every id a producer of the run recorded as acked."""
    return {parts[receipts.ID] for _name, path in receipts.files(directory, receipts.SENT)
            for parts in receipts.lines(path)}


def judge_output(directory: Path, topic: str, counts: Counter) -> OutputRead:
    """``counts``: how often each id of the run is in the output topic (the broker's ``read_output``)."""
    acked = acked_ids(directory)
    missing = sorted(i for i in acked if not counts.get(i))
    return OutputRead(read=True, topic=topic, acked=len(acked), once=sum(counts.get(i) == 1 for i in acked),
                      missing=len(missing), more_than_once=sum(n > 1 for n in counts.values()),
                      missing_ids=missing[:SAMPLE])


def not_read(note: str) -> OutputRead:
    return OutputRead(read=False, note=note)
