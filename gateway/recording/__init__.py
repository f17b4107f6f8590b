"""Session recordings: the asciicast v2 codec (pure) and the recorder that writes off the event loop."""
