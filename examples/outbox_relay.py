"""Relay events from the outbox with a consumer, as a host worker would.

Every change cxflow makes is committed together with its events, which are
appended to the store's outbox in the same atomic write. A ``Consumer`` reads
the outbox by position, a batch at a time, hands each batch to the relay
(here: prints each event as JSON, as it would publish it to a queue), and
commits how far it got (its cursor) in the store. A restarted relay resumes
after the last batch it committed: a batch it was in the middle of is handed
over again, so the relay delivers at least once and the receiver
deduplicates by ``envelope.id``.

Run it with ``python examples/outbox_relay.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cxflow import Batch, Engine, MemoryStore, TestClock, default_flow
from cxflow.serialization import event_from_dict, event_to_dict

TENANT = "acme"
delivered: set[str] = set()
"""What the receiving end has seen: the envelope ids it deduplicates by."""


def relay(batch: Batch) -> None:
    for stored in batch.events:
        payload = json.dumps(event_to_dict(stored.event), ensure_ascii=False)
        # A real relay publishes ``payload`` to a queue or a webhook here.
        envelope = stored.event.envelope
        assert envelope is not None
        assert event_from_dict(json.loads(payload)) == stored.event
        if envelope.id in delivered:
            continue  # a redelivery after a crash: the receiver drops it
        delivered.add(envelope.id)
        print(f"{stored.position:>3} {stored.event.type:<22} {envelope.subject_kind} "
              f"{envelope.subject_id} v{envelope.subject_version}")


def main() -> None:
    clock = TestClock(datetime(2024, 5, 6, 9, 0, tzinfo=UTC))
    store = MemoryStore()
    session = Engine(clock=clock).session(store)
    session.tasks.create_flow(
        TENANT, default_flow("delivery_inquiry", flow_id="delivery"), by="admin"
    )
    task = session.tasks.create_task(
        TENANT, flow_id="delivery", title="Where is order 1042?", by="mina", task_id="D-1"
    )

    consumer = session.consumer("relay", relay, batch_size=4)
    handled = consumer.run(TENANT)
    print(f"-- relayed {handled} events, cursor at {consumer.position(TENANT)}; more work --")

    clock.advance(minutes=3)
    session.tasks.check_todo(TENANT, task.id, "t1", by="mina")
    session.tasks.move_task(TENANT, task.id, "tracking", by="mina")
    session.tasks.add_comment(TENANT, task.id, "Courier says it left the depot", by="mina")

    # A new process: a new consumer of the same name starts from the stored cursor.
    restarted = session.consumer("relay", relay, batch_size=4)
    handled = restarted.run(TENANT)
    print(f"-- relayed {handled} more, cursor at {restarted.position(TENANT)}; "
          f"nothing left: {restarted.run(TENANT)}")


if __name__ == "__main__":
    main()
