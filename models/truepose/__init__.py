"""TruePose pose transfer (../shared/papers/truepose.txt §4), host-free parts.

- ``config.py``: TruePoseConfig (HPFA/CAA sites, σ, δ, K, CLIP width, pose encoder widths).
- ``parsing_selection.py``: §4.2's target-oriented source parsing selection, M and M on a token grid.
- ``hpfa.py``: human-parsing-guided fusion attention (eq. 6–8) and its projections.
- ``caa.py``: CLIP-guided attention alignment (eq. 9): region ranking, crops' boxes, projections.
- ``pose_encoder.py``: four convolutions from the skeleton image, zero-initialised output.
- ``spec.py``: the "truepose" weight-file layout.
"""
