"""Shared vocabulary of every room: ids, errors, domain records, clock and store ports."""
