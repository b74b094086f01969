"""Relay events from the outbox, as a host worker would.

Every change cxflow makes is committed together with its events, which are
appended to the store's outbox in the same atomic write. A host relay reads
the outbox by position, forwards each event (here: prints it as JSON), then
remembers the last position it handled, so a restarted relay resumes where
it stopped and never loses an event.

Run it with ``python examples/outbox_relay.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cxflow import MemoryStore, Store, TaskService, TestClock, default_flow
from cxflow.serialization import event_from_dict, event_to_dict

TENANT = "acme"


def relay(store: Store, tenant: str, after: int, batch: int = 4) -> int:
    """Forward every event after position ``after``; return the last position handled."""
    while True:
        stored = store.read_events(tenant, after=after, limit=batch)
        if not stored:
            return after
        for item in stored:
            payload = json.dumps(event_to_dict(item.event), ensure_ascii=False)
            # A real relay publishes ``payload`` to a queue or a webhook here.
            print(f"{item.position:>3} {payload}")
            assert event_from_dict(json.loads(payload)) == item.event
            after = item.position


def main() -> None:
    clock = TestClock(datetime(2024, 5, 6, 9, 0, tzinfo=UTC))
    store = MemoryStore()
    service = TaskService(store, clock)
    service.create_flow(TENANT, default_flow("delivery_inquiry", flow_id="delivery"), by="admin")
    task = service.create_task(
        TENANT, flow_id="delivery", title="Where is order 1042?", by="mina", task_id="D-1"
    )

    position = relay(store, TENANT, after=0)
    print(f"-- relayed up to position {position}; more work happens --")

    clock.advance(minutes=3)
    service.check_todo(TENANT, task.id, "t1", by="mina")
    service.move_task(TENANT, task.id, "tracking", by="mina")
    service.add_comment(TENANT, task.id, "Courier says it left the depot", by="mina")

    position = relay(store, TENANT, after=position)
    print(f"-- relayed up to position {position}; nothing left: {relay(store, TENANT, position)}")


if __name__ == "__main__":
    main()
