"""Documents for review boards: the model card (:mod:`.card`) the compliance report is built
around."""
