"""What `invoke proof` prints and saves of each round, without Docker: the rounds themselves
(one_round) and the running stack are stood in for."""

import json

from mqlab import config
from mqlab.faults import proof
from mqlab.stack import preflight


def test_each_round_line_shows_how_long_the_fault_took(tmp_path, monkeypatch):
    rounds = iter([proof.Round("kill-node", "leader", 1, "r1", 1000, 1000, 0, 2, 3.04, 4.5, 12.34, 0, 0, "restarted",
                               "quorum"),
                   proof.Round("kill-node", "follower", 1, "r2", 900, 900, 0, 0, 0.5, 0.7, 8.06, None, 0, "restarted",
                               "quorum")])
    monkeypatch.setattr(preflight, "docker_client", lambda: object())
    monkeypatch.setattr(preflight, "swarm_services", lambda client, stack: {})  # one engine
    monkeypatch.setattr(proof, "running_stack", lambda name, client: None)
    monkeypatch.setattr(proof, "current_mode", lambda client, stack: "quorum")
    monkeypatch.setattr(proof, "one_round", lambda *args: next(rounds))
    monkeypatch.setattr(proof, "draw", lambda *args: [])  # no run on disk to draw
    lines = []
    cfg = config.LabConfig(root=tmp_path, offline=False, values={})
    _text, saved, why = proof.prove(cfg, "rabbitmq-cluster", ["kill-node"], ["leader", "follower"], 1, 200, 256,
                                    None, lines.append)
    rounds_said = [line.strip() for line in lines if line.startswith("    acked")]
    assert rounds_said == ["acked 1,000, lost 0, gone from the log 0, duplicated 2, no ack for 3.0 s, no delivery "
                           "for 4.5 s (the fault took 12.3 s)",
                           "acked 900, lost 0, gone from the log not read (a queue), duplicated 0, no ack for 0.5 s, "
                           "no delivery for 0.7 s (the fault took 8.1 s)"]
    assert why == ""
    saved_rounds = json.loads(saved.with_suffix(".json").read_text())["rounds"]
    assert [r["fault_s"] for r in saved_rounds] == [12.34, 8.06]


def _txn_rounds(extra: int) -> list:
    """Two kill-node rounds of the txn mode: many receipts repeat (outside the transaction);
    the output topic holds each id once, or ``extra`` ids more than once in the second round."""
    return [proof.Round("kill-node", "leader", n, f"r{n}", 1000, 1000, 0, 150, 3.0, 4.0, 12.0, 0, 0, "fenced", "txn",
                        output_missing=0, output_extra=extra if n == 2 else 0) for n in (1, 2)]


def test_a_transactional_round_is_judged_on_its_output_topic_not_its_receipts(tmp_path, monkeypatch):
    stack = proof.get_stack("kafka-cluster")
    rows = proof.summarize(_txn_rounds(0))
    text = proof.render("kafka-cluster", "txn", rows, markdown=True)
    assert "| output topic: missing | output topic: more than once |" in text
    assert "| leader | 2 | 2,000 | 2,000 | 0 | 0 | 300 |" in text and text.rstrip().endswith("| 0 | 0 | 0 |")
    assert proof.failed(stack, _txn_rounds(0)) == ""  # duplicated receipts are not the judgement
    assert proof.failed(stack, _txn_rounds(3)) == "3 input ids missing from the output topic or in it more than once (txn)"
    unread = _txn_rounds(0)
    unread[0].output_missing = unread[0].output_extra = None
    assert "could not be read" in proof.failed(stack, unread)
    group = [proof.Round("kill-node", "leader", 1, "r1", 1000, 1000, 0, 150, 3.0, 4.0, 12.0, 0, 0, "fenced", "group")]
    assert "output topic" not in proof.render("kafka-cluster", "group", proof.summarize(group))
