"""Assistant hooks: Claude Code, Codex CLI and Gemini CLI tool calls under gateway policy.

One module per assistant maps its hook JSON into one ``HookCall`` (with a policy
``ToolCall``) and a ``Verdict`` back into its output JSON and exit code:
``claude``, ``codex``, ``gemini`` (``registry.adapter_for`` picks one; ``model`` holds the
shared values). ``endpoint.answer_hook`` is the gateway side (decide, hold for approval,
answer); ``command.main`` is ``rcgate hook claude|codex|gemini``, the command hook that
forwards to the gateway and fails closed; ``settings`` generates the session-scoped hook
configuration for each assistant and ``preflight`` checks it could not fall open;
``timing`` keeps every answer ahead of the assistant's own hook timeout.
"""
