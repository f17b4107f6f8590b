"""Session recordings: the asciicast v2 codec (pure), the recorder that writes off the event loop,
the signed hash chain that makes recordings tamper-evident (``chain``, pure), the signing key
(``keys``), recordings at rest (``archive``) and the ``rcgate recordings`` actions
(``cli_commands``). Format: docs/recording-format.md.
"""
