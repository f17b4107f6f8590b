"""`rcgate share` on the workstation: the local PTY, the link to the gateway, the login files."""
