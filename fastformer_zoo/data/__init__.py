"""Review data: :mod:`.readers` and :mod:`.prepare` (no paddle), :mod:`.synthetic`, and :mod:`.loader` (training batches)."""
