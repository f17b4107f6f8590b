"""Identity: users, factors (passkeys, TOTP, passwords), login sessions, step-up, lockout."""
