"""Reads a run's TensorBoard logs with TensorBoard's own reader and prints every scalar as JSON:
{tag: [[step, value], ...]}. Used by tensorboard_peer.rs with the peer's venv
(`../shared/peer/setup.sh --interop`)."""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

accumulator = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
accumulator.Reload()
print(json.dumps({
    tag: [[event.step, event.value] for event in accumulator.Scalars(tag)]
    for tag in accumulator.Tags()["scalars"]
}))
