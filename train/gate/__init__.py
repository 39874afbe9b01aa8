"""The toy substrate's gate: does a trained toy base use its attention, so that a reference read can
move anything? ``python -m atelier.train.gate`` prints per-site attention entropy, the effect of
removing self-attention, and the self-reference oracle (the clean target as its own reference)."""
