#!/usr/bin/env python3
"""A downstream billing consumer of convmeter's conversation-events topic, in Python's standard
library only: it tallies the charges per WABA, month and category, as lines and billable lines.

It reads the topic as JSON lines from kcat (librdkafka's command-line client):

    kcat -C -b BROKERS -t convmeter.conversation-events.v1 -e -q -J | events/examples/tally.py

and applies what the event catalogue (README.md) asks of every consumer: events in partition
order; every charge.v1 kept by its id (a later charge with the same id replaces it); every id a
correction.v1 retracts undone. The tally it prints (JSON) equals the billing projection's totals
of the same topic (services/aggregator TestDownstreamConsumerInPython checks it). Prices are the
billing projection's business (rate cards); a consumer that only counts needs none of it.
"""
import json
import sys


def tally(lines):
    """Returns {"<waba_id>|<month>": {"<category>": {"lines": n, "billable": n}}}."""
    charges = {}  # applied charge id -> (waba_id, month, category, billable)
    for line in lines:
        record = json.loads(line)
        event = json.loads(record["payload"])
        kind, data = event["type"], event["data"]
        if kind == "charge.v1":
            charges[event["id"]] = (data.get("waba_id", ""), data.get("month", ""), data["category"], data["billable"])
        elif kind == "correction.v1":
            for retracted in data.get("retracts") or []:
                charges.pop(retracted, None)
    out = {}
    for waba, month, category, billable in charges.values():
        c = out.setdefault(waba + "|" + month, {}).setdefault(category, {"lines": 0, "billable": 0})
        c["lines"] += 1
        c["billable"] += 1 if billable else 0
    return out


if __name__ == "__main__":
    json.dump(tally(sys.stdin), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
