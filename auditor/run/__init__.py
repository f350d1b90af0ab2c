"""The run: settings (:mod:`.config`, :mod:`.runconfig`), plugin discovery (:mod:`.registry`),
loading and the one inference pass (:mod:`.pipeline`, :mod:`.inference`, :mod:`.task`),
running the audits in isolation (:mod:`.runner`), the energy meter (:mod:`.energy`),
retraining for audits that ask (:mod:`.retrain`, :mod:`.seeding`) and assembling the report
(:mod:`.assemble`)."""
