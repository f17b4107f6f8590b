"""Live assistant sessions: the pure state machine, one broker task per session, the registry."""
