"""Text2Graph nodes (issue 6): filled in by the Text2Graph work; the list below is what the extension registers."""

NODES: tuple = ()
