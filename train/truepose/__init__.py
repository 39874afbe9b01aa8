"""Training TruePose pose transfer (../../shared/papers/truepose.txt §4): the shared SourceNet/TargetNet
UNet update, HPFA and CAA projections and the pose encoder, with condition dropout, on the toy world's
pose pairs or DeepFashion In-shop; plus the toy-world pose-transfer evaluation.

- ``cli.py``: ``python -m atelier.train.truepose`` (options, stages, export of the weight files).
- ``data.py``: pairs (source, source LIP parsing, target, target pose and skeleton) and each step's batch.
- ``components.py``: the source side of a batch: z_s, the selected parsing mask M, CAA's region masks
  and CLIP region embeddings (the frozen CLIP encoder and base come from train.igr / train.anydressing).
- ``steps.py``: variants, what is trained, the conditioned TargetNet call, one step (condition dropout).
- ``evaluate.py``: re-pose held-out toy people and score SSIM, PSNR and garment-colour fidelity.
- ``selection_rate.py``: how often the selected parsing mask M leaves part of the source person out.
"""
