"""Session recordings: the asciicast v2 codec (pure), the recorder that writes off the event loop,
the signed hash chain that makes recordings tamper-evident (``chain``, pure), the signing key
(``keys``), recordings at rest (``archive``), the seek index (``seekindex``, ``screen``), retention
and legal hold (``retention``), the terminal output filter of ``play`` (``termsafe``) and the
``rcgate recordings`` actions (``cli_commands``). Format: docs/recording-format.md.
"""
