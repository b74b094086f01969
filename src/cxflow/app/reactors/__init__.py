"""Reactors: what follows, in the same commit, from what a unit of work staged.

The engine runs them in this fixed order after the operation's own command
(whose service already synced SLA clocks and planned the subject's timers):

1. ``assignment``: conversations opened for routing are queued, closed ones
   finish their routing (the slot frees and the queue drains), agent replies
   answer the assignment, hand assignments transfer within the scheduler.

The rules engine will be the next one.
"""
