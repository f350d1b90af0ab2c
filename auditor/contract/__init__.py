"""The plugin contract: what an audit declares (:mod:`.plugin`), what it reads
(:mod:`.context`), what it returns (:mod:`.result`), the shared metric vocabulary
(:mod:`.vocabulary`) and the errors every part of auditor raises (:mod:`.errors`).

Built-in audits use exactly this contract and nothing private; nothing here imports torch.
"""
