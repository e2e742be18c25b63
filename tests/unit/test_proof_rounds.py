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
