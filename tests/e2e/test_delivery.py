"""Written once, run against every stack: up, produce, verify, scale, produce, verify, down."""

from __future__ import annotations

import re

import docker

from tests.e2e.conftest import invoke

COUNT = 10_000


def verified(stack: str) -> dict[str, int]:
    """Run `invoke verify` and read its table: the counts, and each consumer's share."""
    done = invoke("verify", stack, "--settle", "20", "--timeout", "180")
    out = done.out
    numbers = {
        "exit": done.code,
        "sent": int(re.search(r"sent and acked by the broker\s+([\d,]+)", out).group(1).replace(",", "")),
        "lost": int(re.search(r"lost \(acked, never received\)\s+([\d,]+)", out).group(1).replace(",", "")),
    }
    numbers["consumers"] = [int(n.replace(",", "")) for n in re.findall(r"by consumer \S+\s+([\d,]+)", out)]
    return numbers


def test_every_message_delivered_and_work_split_when_scaled(stacks, stack_name):
    stacks.up(stack_name, consumers=1)

    first = invoke("produce", stack_name, "--count", str(COUNT), "--size", "512")
    assert first.ok, first.out
    result = verified(stack_name)
    assert result["exit"] == 0
    assert result["sent"] == COUNT and result["lost"] == 0
    assert len(result["consumers"]) == 1 and sum(result["consumers"]) >= COUNT

    scaled = invoke("scale", stack_name, "--consumers", "3")
    assert scaled.ok, scaled.out
    second = invoke("produce", stack_name, "--count", str(COUNT), "--size", "512")
    assert second.ok, second.out
    result = verified(stack_name)
    assert result["exit"] == 0
    assert result["sent"] == COUNT and result["lost"] == 0
    assert len(result["consumers"]) == 3, result
    assert all(n > 0 for n in result["consumers"]), result


def test_down_leaves_no_container(stacks, stack_name):
    stacks.up(stack_name)
    stacks.down()
    client = docker.from_env()
    left = client.containers.list(all=True, filters={"label": f"com.docker.compose.project=mqlab-{stack_name}"})
    assert left == []
