"""Model files the reference-attention workflows need in the workflow execution test (none: it only
uses the checkpoint, which the test substitutes with the tiny SD1.5-shaped one)."""

ASSETS: dict = {}
