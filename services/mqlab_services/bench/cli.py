"""The command line: ``bench producer|consumer ...``, and the table of trials it runs."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

from .. import bare
from ..producer import _rate, _run_id, _size
from ..adapters import Adapter
from ..runtime import Stopper, serve
from ..settings import Settings
from .consumer import BareConsumer, BenchConsumer
from .producer import BareProducer, BenchProducer
from .trial import Trial, run_trial

#: (role, --bare) -> the trial that runs; each makes itself from the arguments with from_args().
TRIALS: dict[tuple[str, bool], type[Trial]] = {
    ("producer", False): BenchProducer,
    ("consumer", False): BenchConsumer,
    ("producer", True): BareProducer,
    ("consumer", True): BareConsumer,
}


def _seconds(minimum: float, strict: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            word = "above" if strict else "at least"
            raise argparse.ArgumentTypeError(f"must be {word} {minimum:g}, got {text!r}")
        return value
    return parse


def _directory(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a directory, got ''")
    return text


def _common_arguments() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=_directory, required=True, metavar="DIR",
                        help="directory for the result file <role>-<MQLAB_NAME>.json (created if missing)")
    common.add_argument("--trial", type=_run_id, required=True, metavar="ID",
                        help="trial id: the run id of the messages sent; the consumer counts only these")
    common.add_argument("--start", type=_seconds(0.0, True), required=True, metavar="EPOCH_S",
                        help="wall-clock start of the trial, seconds since the epoch (time.time()), "
                             "the same for every producer and consumer")
    common.add_argument("--warmup", type=_seconds(0.0, False), required=True, metavar="S",
                        help="seconds after --start that are not measured")
    common.add_argument("--duration", type=_seconds(0.0, True), required=True, metavar="S",
                        help="seconds measured after the warm-up")
    common.add_argument("--bare", action="store_true",
                        help="run the bare client instead of the lab's (see bare.py): the same library "
                             "and safety settings without envelope, ledger or per-message bookkeeping; "
                             "with --rate, one MQLAB_BATCH is due every MQLAB_BATCH/rate seconds")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="A timed benchmark producer or consumer for the broker named by MQLAB_BROKER; "
                    "writes <out>/<role>-<name>.json. Settings come from MQLAB_* variables.")
    roles = parser.add_subparsers(dest="role", required=True, metavar="{producer,consumer}")
    common = _common_arguments()
    producer = roles.add_parser("producer", parents=[common], help="send from --start until the end",
                                description="Send envelopes from --start until start+warmup+duration.")
    producer.add_argument("--size", type=_size, required=True, metavar="BYTES",
                          help="pad each encoded envelope to this many bytes (as the lab's producer)")
    producer.add_argument("--rate", type=_rate, metavar="MSGS_PER_S",
                          help="this producer's rate; message i is due at start + i/rate and stamped "
                               "with that time (default: as fast as confirms come, MQLAB_BATCH per publish)")
    consumer = roles.add_parser("consumer", parents=[common], help="receive until the end and a drain",
                                description="Receive until the end has passed and the trial's messages "
                                            "stopped coming for 1 s, or until end + drain.")
    consumer.add_argument("--drain", type=_seconds(0.0, False), default=10.0, metavar="S",
                          help="seconds after the end to keep receiving at most (default 10)")
    return parser


def bare_refusal(args: argparse.Namespace, settings: Settings) -> str | None:
    """Why the bare client cannot run this trial, or None."""
    modes = bare.MODES.get(settings.broker, ())
    if settings.mode not in modes:
        return f"the bare client runs only in {' or '.join(modes)} mode on {settings.broker}, not {settings.mode}"
    return None


def main(argv: list[str] | None = None, environ=None) -> int:
    return serve("bench", build_parser(), _bench, argv, environ)


def _bench(args: argparse.Namespace, stopper: Stopper, settings: Settings, adapter: Adapter) -> int:
    refused = bare_refusal(args, settings) if args.bare else None
    if refused:
        print(f"bench: {refused}", file=sys.stderr)
        return 2
    trial = TRIALS[(args.role, args.bare)].from_args(args, settings, adapter, stopper)
    return run_trial(trial, adapter, stopper, args.out)
